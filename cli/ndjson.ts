export interface InputLine {
  /** 1-based, as editors count. */
  number: number;
  text: string;
}

/**
 * The lines of a stream, read as it arrives: the next chunk is read only when the previous lines
 * were consumed, so a large file never sits in memory whole.
 */
export async function* readLines(stream: AsyncIterable<string | Uint8Array>): AsyncGenerator<InputLine> {
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let pending = '';
  let number = 0;
  for await (const chunk of stream) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    const lines = pending.split('\n');
    // The last piece has no newline yet: it continues in the next chunk.
    pending = lines.pop() ?? '';
    for (const text of lines) {
      number += 1;
      yield { number, text: text.replace(/\r$/, '') };
    }
  }
  pending += decoder.decode();
  if (pending.length > 0) yield { number: number + 1, text: pending.replace(/\r$/, '') };
}
