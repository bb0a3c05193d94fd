/** The `telemetry` command (bin/telemetry.mjs runs this file through tsx). */
import { processIo } from './io.ts';
import { runCli } from './run.ts';

process.exitCode = await runCli(process.argv.slice(2), processIo());
