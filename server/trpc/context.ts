import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { EventIngestor } from '../services/events/ingest.ts';
import type { EventReader } from '../services/events/read.ts';
import type { EventQueries } from '../services/stats/queries.ts';
import type { StatsService } from '../services/stats/stats.ts';
import type { KeyService } from '../services/keys/keys.ts';
import type { ErasureService } from '../services/erasure/erase-user.ts';
import type { RetentionService } from '../services/retention/retention.ts';
import type { RateLimiter } from '../services/limits/rate-limiter.ts';
import type { WorkspaceLimitService } from '../services/limits/workspace-limits.ts';
import type { Metrics } from '../metrics.ts';
import type { LiveStreams } from '../services/live/live-streams.ts';
import type { StreamTickets } from '../services/live/stream-tickets.ts';
import type { AdapterRejectionLedger } from '../services/rejections/rejections.ts';
import type { WorkspaceService } from '../services/workspaces/workspaces.ts';

/** Reads of stored events: one by id (events.get) and pages of them (events.list). */
export type EventReads = EventReader & Pick<EventQueries, 'listEvents'>;

/**
 * The service verbs procedures may call; built once per app in createServices. What only start-up
 * and shutdown need (the write queue's drain, closing connections) is not here: see ServiceLifecycle.
 */
export interface Services {
  /** Validates events and hands them to the shared write queue (telemetry.ingest, ingestBatch). */
  ingestor: EventIngestor;
  eventReader: EventReads;
  /** Statistics over one workspace's events (telemetry.stats.*). */
  stats: StatsService;
  /** `eventReader` and `stats` whose statements are cancelled when `signal` aborts (the call's deadline). */
  readsUntil(signal: AbortSignal): { eventReader: EventReads; stats: StatsService };
  keys: KeyService;
  /** Workspaces: created, listed and renamed by admins (admin.workspaces), read by telemetry.workspace. */
  workspaces: WorkspaceService;
  erasure: ErasureService;
  /** Retention overrides and the expiry job (admin.retention). */
  retention: RetentionService;
  /** Spends a key's budget; closing it is the lifecycle's business. */
  rateLimiter: Pick<RateLimiter, 'consume' | 'store'>;
  /** Per-workspace rate ceilings every bound key also spends from (admin.workspaceLimits). */
  workspaceLimits: WorkspaceLimitService;
  /** Live streams of committed events (telemetry.live); ending them all is the lifecycle's business. */
  live: Pick<LiveStreams, 'open' | 'openStreams' | 'windowSize'>;
  /** Short-lived tickets that open live streams without a key in the URL (telemetry.liveTicket). */
  streamTickets: StreamTickets;
  /** What ingest adapters refused, counted and kept per workspace (telemetry.adapterRejections). */
  adapterRejections: AdapterRejectionLedger;
  metrics: Metrics;
}

/** Everything a procedure can reach. Built without HTTP in tests (createContextInner). */
export interface Context {
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
