import type { TelemetryClient } from '../client/index.ts';
import type { QueryWindow } from './time-range.ts';

/** What every view needs to load its data: the typed client, the workspace to read and the time window. */
export interface ViewContext {
  client: TelemetryClient;
  /** `{ workspaceId }` for an admin key; empty for a read key, which is bound to its workspace. */
  scope: { workspaceId?: string };
  window: QueryWindow;
}
