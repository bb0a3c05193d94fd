export interface InputLine {
  /** 1-based, as editors count. */
  number: number;
  text: string;
  /** The line was longer than maxLineLength: its text was dropped. */
  tooLong?: boolean;
}

/**
 * The lines of a stream, read as it arrives: the next chunk is read only when the previous lines
 * were consumed, so a large file never sits in memory whole.
 */
export async function* readLines(stream: AsyncIterable<string | Uint8Array>, options: { maxLineLength?: number } = {}): AsyncGenerator<InputLine> {
  const maxLineLength = options.maxLineLength ?? 16 * 1024 * 1024;
  const decoder = new TextDecoder('utf-8', { fatal: false });
  // The current line's pieces: a chunk without a newline is kept as it is, not re-split with
  // everything before it, so a long line costs linear time.
  let pieces: string[] = [];
  let pendingLength = 0;
  let tooLong = false;
  let number = 0;
  const finish = (last: string): InputLine => {
    number += 1;
    const text = tooLong ? '' : (pieces.join('') + last).replace(/\r$/, '');
    const line = tooLong ? { number, text, tooLong: true } : { number, text };
    pieces = [];
    pendingLength = 0;
    tooLong = false;
    return line;
  };
  const keep = (piece: string) => {
    if (tooLong) return;
    pendingLength += piece.length;
    // Past the limit the line is dropped (and reported as invalid), never held in memory.
    if (pendingLength > maxLineLength) {
      tooLong = true;
      pieces = [];
    } else pieces.push(piece);
  };
  for await (const chunk of stream) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let newline = text.indexOf('\n'); newline >= 0; newline = text.indexOf('\n', start)) {
      yield finish(text.slice(start, newline));
      start = newline + 1;
    }
    keep(text.slice(start));
  }
  keep(decoder.decode());
  if (pendingLength > 0 || tooLong) yield finish('');
}
