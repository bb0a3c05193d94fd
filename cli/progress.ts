import { formatCount } from './format.ts';
import type { OutputStream } from './io.ts';

export interface SendTotals {
  sent: number;
  accepted: number;
  duplicate: number;
  rejected: number;
}

const CLEAR_LINE = '\r\x1b[2K';

/**
 * Progress of a long send on stderr. On a terminal it redraws one line, once a send has taken more
 * than a second (short sends stay quiet); with `--progress` elsewhere (a log file) it writes a
 * line per second and a last one at the end.
 */
export function createSendProgress(stderr: OutputStream, options: { forced: boolean; now?: () => number; intervalMs?: number }) {
  const now = options.now ?? (() => performance.now());
  const intervalMs = options.intervalMs ?? 1000;
  const redraw = stderr.isTTY;
  const enabled = options.forced || stderr.isTTY;
  const startedAt = now();
  let lastShownAt = startedAt;
  let lineShown = false;

  const describe = (totals: SendTotals) => {
    const seconds = Math.max((now() - startedAt) / 1000, 0.001);
    return `sent ${formatCount(totals.sent)} events (${formatCount(Math.round(totals.sent / seconds))}/s): ${formatCount(totals.accepted)} accepted, ${formatCount(totals.duplicate)} duplicate, ${formatCount(totals.rejected)} rejected`;
  };
  const show = (totals: SendTotals) => {
    if (redraw) {
      stderr.write(`${CLEAR_LINE}${describe(totals)}`);
      lineShown = true;
    } else {
      stderr.write(`${describe(totals)}\n`);
    }
    lastShownAt = now();
  };

  return {
    update(totals: SendTotals) {
      if (enabled && now() - lastShownAt >= intervalMs) show(totals);
    },
    /** Writes a message (a rejection, a retry) without tearing the progress line. */
    message(text: string) {
      if (lineShown) {
        stderr.write(CLEAR_LINE);
        lineShown = false;
      }
      stderr.write(`${text}\n`);
    },
    finish(totals: SendTotals) {
      if (lineShown) stderr.write(CLEAR_LINE);
      lineShown = false;
      if (options.forced && !redraw) show(totals);
    },
  };
}
