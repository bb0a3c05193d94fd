/**
 * Everything the CLI touches outside itself, passed in rather than read from globals, so the same
 * code runs as the real process or inside a test with captured output.
 */
export interface OutputStream {
  write(text: string): void;
  readonly isTTY: boolean;
}

export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  stdin: { readonly stream: AsyncIterable<string | Uint8Array>; readonly isTTY: boolean };
  env: Readonly<Record<string, string | undefined>>;
  /** Calls `handler` on Ctrl-C (SIGINT); answers a function that stops listening. */
  onInterrupt(handler: () => void): () => void;
}

export function processIo(): CliIo {
  // `telemetry query list --json | head` closes the pipe early: that is the reader's choice, not
  // a failure worth a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  return {
    stdout: { write: (text) => void process.stdout.write(text), isTTY: process.stdout.isTTY === true },
    stderr: { write: (text) => void process.stderr.write(text), isTTY: process.stderr.isTTY === true },
    stdin: { stream: process.stdin, isTTY: process.stdin.isTTY === true },
    env: process.env,
    onInterrupt(handler) {
      process.on('SIGINT', handler);
      return () => void process.off('SIGINT', handler);
    },
  };
}
