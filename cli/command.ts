import type { TelemetryClientOptions } from '../client/index.ts';
import { connect, resolveConnection, type Connection } from './connection.ts';
import { CliFailure, describeFailure } from './errors.ts';
import type { ExitCode } from './exit-codes.ts';
import type { CliIo } from './io.ts';

export interface CommandContext {
  io: CliIo;
  now(): Date;
}

export interface Command {
  /** The words that select it: `['query', 'list']`. */
  path: readonly string[];
  /** One line for the command list. */
  summary: string;
  /** The full `--help` text. */
  help: string;
  run(args: string[], context: CommandContext): Promise<ExitCode>;
}

export type TelemetryClient = ReturnType<typeof connect>;

export interface Session {
  client: TelemetryClient;
  connection: Connection;
  /** Runs one service call; a failure becomes a CliFailure with a clear message and exit code. */
  call<T>(request: (client: TelemetryClient) => Promise<T>): Promise<T>;
  /** The same explanation for an error caught elsewhere (a stream's onError). */
  explain(error: unknown): CliFailure;
}

/**
 * The client for one command run. `keyNeeded` ("an admin key") goes into the hints printed when
 * the key is missing or refused.
 */
export function openSession(
  flags: { url?: string | undefined; key?: string | undefined },
  io: CliIo,
  keyNeeded: string,
  options: Pick<TelemetryClientOptions, 'EventSource'> & { flagOf?: (field: string) => string | undefined } = {},
): Session {
  const connection = resolveConnection(flags, io.env, keyNeeded);
  const client = connect(connection, options.EventSource ? { EventSource: options.EventSource } : {});
  const explain = (error: unknown) => {
    if (error instanceof CliFailure) return error;
    const { message, exitCode } = describeFailure(error, { url: connection.url, keyNeeded, ...(options.flagOf && { flagOf: options.flagOf }) });
    return new CliFailure(message, exitCode);
  };
  return {
    client,
    connection,
    explain,
    async call(request) {
      try {
        return await request(client);
      } catch (error) {
        throw explain(error);
      }
    },
  };
}
