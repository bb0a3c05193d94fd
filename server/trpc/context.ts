import type { Database } from '../../db/database.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { EventIngestor } from '../services/events/ingest.ts';
import type { EventReader } from '../services/events/read.ts';
import type { EventQueries } from '../services/stats/queries.ts';
import type { KeyService } from '../services/keys/keys.ts';
import type { ErasureService } from '../services/erasure/erase-user.ts';
import type { RetentionService } from '../services/retention/retention.ts';
import type { RateLimiter } from '../services/limits/rate-limiter.ts';
import type { WorkspaceLimitService } from '../services/limits/workspace-limits.ts';
import type { GroupCommitter } from '../services/events/group-commit.ts';
import type { Metrics } from '../metrics.ts';
import type { LiveStreams } from '../services/live/live-streams.ts';
import type { StreamTickets } from '../services/live/stream-tickets.ts';

/** The service verbs procedures may call; built once per app in createServices. */
export interface Services {
  events: EventIngestor;
  eventReader: EventReader;
  queries: EventQueries;
  /** `eventReader` and `queries` whose statements are cancelled when `signal` aborts (the call's deadline). */
  readsUntil(signal: AbortSignal): { eventReader: EventReader; queries: EventQueries };
  keys: KeyService;
  erasure: ErasureService;
  /** Retention overrides and the expiry job (admin.retention). */
  retention: RetentionService;
  rateLimiter: RateLimiter;
  /** Per-workspace rate ceilings every bound key also spends from (admin.workspaceLimits). */
  workspaceLimits: WorkspaceLimitService;
  /** The shared write queue; drained on shutdown. */
  committer: GroupCommitter;
  /** Live streams of committed events (telemetry.live). */
  live: LiveStreams;
  /** Short-lived tickets that open live streams without a key in the URL (telemetry.liveTicket). */
  streamTickets: StreamTickets;
  metrics: Metrics;
}

/** Everything a procedure can reach. Built without HTTP in tests (createContextInner). */
export interface Context {
  db: Database;
  config: Config;
  services: Services;
  logger: Logger;
  requestId: string;
  /** The API key the caller presented (`Authorization: Bearer ...`), not yet verified. */
  apiKey: string | undefined;
  /** A live stream's ticket from its URL (connectionParams), not yet verified; see stream-tickets.ts. */
  streamTicket?: string | undefined;
  /** Aborts when the call's deadline passes (PROCEDURE_TIMEOUT_MS); set by the procedure middleware. */
  deadline?: AbortSignal | undefined;
  /** True when the credential came from the URL: only bound read keys and tickets are accepted there. */
  credentialInUrl?: boolean;
}

export function createContextInner(context: Context): Context {
  return context;
}
