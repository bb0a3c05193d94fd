import type { Database } from '../../db/database.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { EventIngestor } from '../services/events/ingest.ts';

/** The service verbs procedures may call; built once per app in createServices. */
export interface Services {
  events: EventIngestor;
}

/** Everything a procedure can reach. Built without HTTP in tests (createContextInner). */
export interface Context {
  db: Database;
  config: Config;
  services: Services;
  logger: Logger;
  requestId: string;
}

export function createContextInner(context: Context): Context {
  return context;
}
