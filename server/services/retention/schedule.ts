import { DomainError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { RetentionService } from './retention.ts';
import type { RetentionReport } from './schemas.ts';

/**
 * Runs the retention job every `intervalMs` (0: never) until stopped. The first run comes soon after
 * start-up, so a service redeployed more often than the interval still runs it. Runs never overlap
 * (the next is scheduled when one ends), and only one instance runs at a time (the job's lock);
 * failures are logged and retried at the next interval. Stopping interrupts a run between two steps
 * and waits for it, so the database is not closed under it.
 */
export function scheduleRetention(
  retention: Pick<RetentionService, 'run'>,
  options: { intervalMs: number; logger: Logger; firstRunDelayMs?: number },
): () => Promise<void> {
  if (options.intervalMs <= 0) return async () => {};
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const runOnce = async () => {
    try {
      const report = await retention.run({ signal: controller.signal });
      logReport(options.logger, report);
    } catch (error) {
      if (error instanceof DomainError && error.code === 'conflict') options.logger.info('retention skipped: another run holds the lock');
      else options.logger.error('retention failed', { error });
    }
  };
  const schedule = (delayMs: number) => {
    timer = setTimeout(() => {
      running = runOnce().finally(() => {
        running = undefined;
        if (!controller.signal.aborted) schedule(options.intervalMs);
      });
    }, delayMs);
    timer.unref();
  };
  schedule(options.firstRunDelayMs ?? Math.min(options.intervalMs, 60_000));

  return async () => {
    controller.abort();
    clearTimeout(timer);
    await running;
  };
}

function logReport(logger: Logger, report: RetentionReport) {
  const deleted = report.rowsDeleted.reduce((sum, entry) => sum + entry.rows, 0);
  const fields = {
    partitionsDropped: report.partitionsDropped.map((partition) => partition.name),
    partitionRows: report.partitionsDropped.reduce((sum, partition) => sum + partition.rows, 0),
    rowsDeleted: deleted,
    ledgerRowsDeleted: report.ledgerRowsDeleted,
    rollupRowsDeleted: report.rollupRowsDeleted,
    archives: report.archives.length,
    partitionsCreated: report.partitionsCreated,
    interrupted: report.interrupted,
    ms: report.finishedAt.getTime() - report.startedAt.getTime(),
  };
  if (report.errors.length > 0) logger.warn('retention finished with errors', { ...fields, errors: report.errors });
  else if (report.partitionsDropped.length > 0 || deleted > 0) logger.info('retention finished', fields);
  else logger.debug('retention finished: nothing expired', fields);
}
