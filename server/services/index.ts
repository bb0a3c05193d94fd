import type { Database } from '../../db/database.ts';
import type { Config } from '../config.ts';
import { createLogger, type Logger } from '../logger.ts';
import type { Services } from '../trpc/context.ts';
import { createEventIngestor } from './events/ingest.ts';
import { createEventReader } from './events/read.ts';
import { createKeyService } from './keys/keys.ts';
import { createRateLimiter, type RateLimiter } from './limits/rate-limiter.ts';

export interface ServiceDeps {
  db: Database;
  config: Config;
  logger?: Logger;
  /** Defaults to an in-memory limiter; pass a Redis-backed one to share budgets between instances. */
  rateLimiter?: RateLimiter;
  /** The server clock; tests pin it. */
  now?: () => Date;
}

export function createServices({ db, config, logger = createLogger('silent'), rateLimiter, now }: ServiceDeps): Services {
  return {
    events: createEventIngestor({ db, limits: config.limits, ...(now && { now }) }),
    eventReader: createEventReader({ db }),
    keys: createKeyService({ db }),
    rateLimiter: rateLimiter ?? createRateLimiter({ logger }),
  };
}
