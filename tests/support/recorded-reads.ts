import type { Database } from '../../db/database.ts';
import { DISTRIBUTED_TABLES } from '../../db/distribution.ts';
import { createKeyService } from '../../server/services/keys/keys.ts';
import { procedureCaller, testServices } from './app.ts';
import { type RecordedStatement, recordingRunner } from './statements.ts';

/** Tables sharded by workspace (db/distribution.ts) as statements name them. */
const SHARDED_TABLE = new RegExp(`telemetry\\.(${DISTRIBUTED_TABLES.join('|')})\\b`);

/**
 * Runs every read procedure a read key of `workspaceId` can call (lists, one event, every
 * statistic, from rollups and from raw events) with reads going through a runner that records
 * each statement, and answers the statements that touched a sharded table.
 */
export async function readStatementsOfEveryReadProcedure(db: Database, workspaceId: string, eventId: string, at: Date): Promise<RecordedStatement[]> {
  const statements: RecordedStatement[] = [];
  const recorder = recordingRunner(statements, db);
  const { key } = await createKeyService({ db }).createKey({ kind: 'read', workspaceId });
  const reader = procedureCaller(db, { apiKey: key, services: testServices(db, { readPool: recorder }) });
  const from = new Date(Math.floor(at.getTime() / 86_400_000) * 86_400_000 - 86_400_000);
  const to = new Date(from.getTime() + 3 * 86_400_000);
  await reader.telemetry.events.list({ from, to });
  await reader.telemetry.events.list({ from, to, eventType: 'custom', name: 'x', limit: 2 });
  await reader.telemetry.events.get({ id: eventId });
  await reader.telemetry.stats.timeseries({ from, to, bucket: 'hour' });
  await reader.telemetry.stats.timeseries({ from, to, bucket: 'day', timeZone: 'America/New_York' });
  await reader.telemetry.stats.timeseries({ from, to, bucket: 'hour', uniqueUsers: true });
  await reader.telemetry.stats.top({ from, to, by: 'name' });
  await reader.telemetry.stats.top({ from, to, by: 'targetId' });
  await reader.telemetry.stats.percentiles({ from, to, name: 'LCP', bucket: 'day' });
  await reader.telemetry.stats.funnel({ from, to, windowSeconds: 3600, steps: [{ name: 'x' }, { name: 'y' }] });
  await reader.telemetry.stats.anomalies({ from, to, bucket: 'hour' });
  return statements.filter((statement) => SHARDED_TABLE.test(statement.text));
}
