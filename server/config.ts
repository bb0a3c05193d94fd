import { z } from 'zod';

const DAY_MS = 86_400_000;

const EnvironmentSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: z
    .string()
    .trim()
    .optional()
    .transform((value) => (value ? value : undefined))
    .refine((value) => value === undefined || /^postgres(ql)?:\/\//.test(value), 'must start with postgres:// or postgresql://'),
  PGLITE_DIR: z.string().min(1).default('./.data'),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(500).default(10),
  DATABASE_CONNECT_TIMEOUT_S: z.coerce.number().int().min(1).max(120).default(5),
  MAX_BATCH_EVENTS: z.coerce.number().int().min(1).max(10_000).default(1000),
  MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  MAX_EVENT_AGE_DAYS: z.coerce.number().min(0).max(3650).default(30),
  MAX_FUTURE_SKEW_S: z.coerce.number().min(0).max(30 * 86_400).default(600),
  PARTITION_DAYS_AHEAD: z.coerce.number().int().min(1).max(90).default(7),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
});

export interface Config {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  pgliteDir: string;
  databasePoolMax: number;
  databaseConnectTimeoutSeconds: number;
  limits: {
    maxBatchEvents: number;
    maxBodyBytes: number;
    maxEventAgeMs: number;
    maxFutureSkewMs: number;
  };
  partitionDaysAhead: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the configuration from environment variables; throws a readable ConfigError on a bad value. */
export function loadConfig(environment: Record<string, string | undefined> = process.env): Config {
  const result = EnvironmentSchema.safeParse(environment);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const env = result.data;
  return {
    port: env.PORT,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    pgliteDir: env.PGLITE_DIR,
    databasePoolMax: env.DATABASE_POOL_MAX,
    databaseConnectTimeoutSeconds: env.DATABASE_CONNECT_TIMEOUT_S,
    limits: {
      maxBatchEvents: env.MAX_BATCH_EVENTS,
      maxBodyBytes: env.MAX_BODY_BYTES,
      maxEventAgeMs: env.MAX_EVENT_AGE_DAYS * DAY_MS,
      maxFutureSkewMs: env.MAX_FUTURE_SKEW_S * 1000,
    },
    partitionDaysAhead: env.PARTITION_DAYS_AHEAD,
    logLevel: env.LOG_LEVEL,
  };
}
