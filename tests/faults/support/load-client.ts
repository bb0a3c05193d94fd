/**
 * A load generator for fault tests, run as its own process (as a real client would be):
 * `node --import tsx tests/faults/support/load-client.ts` with settings in the environment.
 *
 * Workers send batches of new events as fast as the service answers. Every id is written to the
 * ATTEMPTED file before it is first sent and to the LEDGER file once the service acknowledged it
 * (accepted or duplicate). A failed batch is retried with the same ids until acknowledged, as the
 * tracker does, so a test can check that nothing acknowledged was lost and that retries stored no
 * duplicates. On SIGTERM each worker finishes (acknowledges) its current batch, then the process
 * prints a JSON summary on stdout and exits.
 */
import { appendFileSync } from 'node:fs';
import { uuidv7 } from '../../../client/uuid7.ts';
import type { LoadSummary } from './load.ts';

const url = required('LOAD_URL');
const key = required('LOAD_KEY');
const workspaceId = required('LOAD_WORKSPACE');
const ledgerFile = required('LOAD_LEDGER');
const attemptedFile = required('LOAD_ATTEMPTED');
const batchSize = Number(process.env.LOAD_BATCH ?? 50);
const workers = Number(process.env.LOAD_WORKERS ?? 4);
const retryDelayMs = Number(process.env.LOAD_RETRY_DELAY_MS ?? 100);
const requestTimeoutMs = Number(process.env.LOAD_REQUEST_TIMEOUT_MS ?? 15_000);
const giveUpMs = Number(process.env.LOAD_GIVE_UP_MS ?? 120_000);

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

const summary: LoadSummary = { acknowledged: 0, attempted: 0, batches: 0, failures: {}, slowestFailureMs: 0, slowestCallMs: 0, gaveUp: 0 };
let stopping = false;
process.once('SIGTERM', () => (stopping = true));
process.once('SIGINT', () => (stopping = true));

async function sendUntilAcknowledged(events: { id: string }[]): Promise<boolean> {
  const started = Date.now();
  for (;;) {
    const callStarted = Date.now();
    let outcome: string;
    try {
      const response = await fetch(`${url}/api/events/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ sentAt: new Date().toISOString(), events }),
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
      if (response.ok) {
        const body = (await response.json()) as { receipts: { status: string }[] };
        if (body.receipts.every((receipt) => receipt.status === 'accepted' || receipt.status === 'duplicate')) {
          summary.slowestCallMs = Math.max(summary.slowestCallMs, Date.now() - callStarted);
          return true;
        }
        outcome = 'rejected';
      } else {
        outcome = `http_${response.status}`;
        await response.body?.cancel();
      }
    } catch (error) {
      outcome = error instanceof Error && error.name === 'TimeoutError' ? 'timeout' : 'network';
    }
    const took = Date.now() - callStarted;
    summary.slowestCallMs = Math.max(summary.slowestCallMs, took);
    summary.slowestFailureMs = Math.max(summary.slowestFailureMs, took);
    summary.failures[outcome] = (summary.failures[outcome] ?? 0) + 1;
    if (outcome === 'rejected') return false;
    if (Date.now() - started > giveUpMs) {
      summary.gaveUp += 1;
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
  }
}

async function worker(): Promise<void> {
  while (!stopping) {
    const events = Array.from({ length: batchSize }, () => ({
      id: uuidv7(),
      workspaceId,
      source: 'backend',
      eventType: 'load.test',
      name: 'fault',
    }));
    appendFileSync(attemptedFile, `${events.map((event) => event.id).join('\n')}\n`);
    summary.attempted += events.length;
    if (await sendUntilAcknowledged(events)) {
      appendFileSync(ledgerFile, `${events.map((event) => event.id).join('\n')}\n`);
      summary.acknowledged += events.length;
      summary.batches += 1;
    }
  }
}

await Promise.all(Array.from({ length: workers }, () => worker()));
process.stdout.write(`${JSON.stringify(summary)}\n`);
