import type { Database } from '../../db/database.ts';
import type { Config } from '../config.ts';
import type { Services } from '../trpc/context.ts';
import { createEventIngestor } from './events/ingest.ts';

export interface ServiceDeps {
  db: Database;
  config: Config;
  /** The server clock; tests pin it. */
  now?: () => Date;
}

export function createServices({ db, config, now }: ServiceDeps): Services {
  return {
    events: createEventIngestor({ db, limits: config.limits, ...(now && { now }) }),
  };
}
