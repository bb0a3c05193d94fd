import { basename } from 'node:path';
import type { Reporter, TestModule, Vitest } from 'vitest/node';
import { OPTIONAL_BACKENDS, RUN_EVERYTHING } from './optional-backends.ts';

/**
 * Ends a test run with what it did not run and why: a green run on PGlite alone looks like a green
 * run on everything unless someone says otherwise. One line per missing backend, "Not run: <what>
 * — <why> — <how to enable>", then the tests that skipped themselves, by file.
 */
export class NotRunReporter implements Reporter {
  private log: (text: string) => void = (text) => process.stdout.write(`${text}\n`);

  onInit(vitest: Vitest): void {
    this.log = (text) => vitest.logger.log(text);
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const missing = OPTIONAL_BACKENDS.flatMap((backend) => {
      const why = backend.missing();
      return why === undefined ? [] : [`Not run: ${backend.what} — ${why} — ${backend.enable}`];
    });
    const skippedByFile = new Map<string, number>();
    for (const testModule of testModules) {
      const skipped = [...testModule.children.allTests('skipped')].length;
      if (skipped === 0) continue;
      const file = `${basename(testModule.moduleId)} on ${testModule.project.name || 'the default project'}`;
      skippedByFile.set(file, (skippedByFile.get(file) ?? 0) + skipped);
    }
    const skippedTotal = [...skippedByFile.values()].reduce((sum, count) => sum + count, 0);

    const lines: string[] = [''];
    if (missing.length === 0) {
      lines.push('Every optional backend was there: PostgreSQL, Redis and Chromium tests ran.');
      if (skippedTotal > 0) lines.push(`Skipped where they do not apply: ${skippedTotal} (a PostgreSQL-only test in the pglite project, ...).`);
    } else {
      lines.push(...missing);
      if (skippedTotal > 0) {
        const files = [...skippedByFile].map(([file, count]) => `${file}: ${count}`).join(', ');
        lines.push(`Skipped in this run: ${skippedTotal} ${skippedTotal === 1 ? 'test' : 'tests'} (${files}).`);
      }
      lines.push(`Run everything: ${RUN_EVERYTHING}`);
    }
    this.log(lines.join('\n'));
  }
}
