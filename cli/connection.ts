import { createTelemetryClient, type TelemetryClientOptions } from '../client/index.ts';
import { UsageError } from './args.ts';
import { CliFailure } from './errors.ts';
import { ExitCode } from './exit-codes.ts';

export const DEFAULT_URL = 'http://localhost:3000';

export interface Connection {
  url: string;
  apiKey: string;
}

/** `--url` and `--key` win over TELEMETRY_URL and TELEMETRY_KEY. */
export function resolveConnection(
  flags: { url?: string | undefined; key?: string | undefined },
  env: Readonly<Record<string, string | undefined>>,
  keyNeeded: string,
): Connection {
  const url = flags.url ?? (env.TELEMETRY_URL || DEFAULT_URL);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`Not a URL: "${url}" (set TELEMETRY_URL or --url to e.g. ${DEFAULT_URL})`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`The service URL must start with http:// or https:// (got "${url}")`);
  const apiKey = flags.key ?? env.TELEMETRY_KEY;
  if (!apiKey) {
    throw new CliFailure(`No API key. Set TELEMETRY_KEY or pass --key with ${keyNeeded}.`, ExitCode.auth);
  }
  return { url, apiKey };
}

export function connect(connection: Connection, options: Pick<TelemetryClientOptions, 'EventSource'> = {}) {
  return createTelemetryClient({ url: connection.url, apiKey: connection.apiKey, ...options });
}
