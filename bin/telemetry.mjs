#!/usr/bin/env node
// The CLI is TypeScript run through tsx (installed by `npm ci` with the other dev dependencies),
// so `npx telemetry` works straight after `npm ci`, with no build step. The tsconfig is named so that running from another project
// (after `npm link`) does not pick up that project's settings.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../cli/main.ts');
