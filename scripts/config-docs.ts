// Writes docs/configuration.md from the variables declared in server/config.ts:
// `npm run docs:config`. tests/config.test.ts fails when the file differs from what this renders.
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { CONFIG_VARIABLES } from '../server/config.ts';

export const CONFIGURATION_DOCS = new URL('../docs/configuration.md', import.meta.url);

const UNITS = [
  ['GiB', 1024 ** 3],
  ['MiB', 1024 ** 2],
  ['KiB', 1024],
] as const;

/** `16777216` as `16 MiB`, for variables counted in bytes; undefined when no unit divides it. */
function asBinaryUnit(bytes: number): string | undefined {
  for (const [unit, size] of UNITS) if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  return undefined;
}

function bound(name: string, value: number): string {
  return (name.endsWith('_BYTES') && asBinaryUnit(value)) || value.toLocaleString('en-US');
}

function defaultCell(name: string, json: Record<string, unknown>, whenUnset: string | undefined): string {
  const value = json.default;
  if (value === undefined) return whenUnset ?? 'unset';
  const unit = typeof value === 'number' && name.endsWith('_BYTES') ? asBinaryUnit(value) : undefined;
  return unit ? `\`${value}\` (${unit})` : `\`${String(value)}\``;
}

function acceptsCell(name: string, json: Record<string, unknown>): string {
  if (Array.isArray(json.enum)) return json.enum.map((value) => `\`${String(value)}\``).join(', ');
  if (json.type === 'integer' || json.type === 'number') {
    const kind = json.type === 'integer' ? 'integer' : 'number';
    const min = typeof json.minimum === 'number' ? json.minimum : undefined;
    // Zod bounds every integer at the safe range: past it is no bound an operator meets.
    const max = typeof json.maximum === 'number' && json.maximum < Number.MAX_SAFE_INTEGER ? json.maximum : undefined;
    if (min !== undefined && max !== undefined) return `${kind}, ${bound(name, min)} to ${bound(name, max)}`;
    if (min !== undefined) return `${kind}, at least ${bound(name, min)}`;
    return kind;
  }
  if (typeof json.minLength === 'number' && typeof json.maxLength === 'number') return `text, ${json.minLength} to ${json.maxLength} characters`;
  return 'text';
}

function table(variables: Record<string, z.ZodType>, seen: Set<string>): string {
  const rows = Object.entries(variables).map(([name, schema]) => {
    if (seen.has(name)) throw new Error(`${name} is declared twice in server/config.ts`);
    seen.add(name);
    const description = schema.description;
    if (!description) throw new Error(`${name} in server/config.ts has no .describe(): say in one line what it does`);
    if (/[|\n]/.test(description)) throw new Error(`${name}: a description is one line without "|" (it is a table cell)`);
    const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    const whenUnset = z.globalRegistry.get(schema)?.whenUnset;
    return `| \`${name}\` | ${defaultCell(name, json, whenUnset)} | ${acceptsCell(name, json)} | ${description} |`;
  });
  return ['| variable | default | accepts | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** The whole page, as docs/configuration.md holds it. */
export function renderConfigurationDocs(): string {
  const seen = new Set<string>();
  return `# Configuration

<!-- Generated from server/config.ts by \`npm run docs:config\`: edit the descriptions there, then run it. -->

Everything is set with environment variables, read and checked once at start-up. A bad value, or a
combination that cannot work (\`LIVE_BUS=redis\` without \`REDIS_URL\`, \`DATABASE_READ_URL\` without
\`DATABASE_URL\`, \`RETENTION_MAX_DAYS\` below \`RETENTION_DAYS\`), stops the service with a message naming
every variable at fault. The operator commands (\`npm run retention\`, \`npm run archive:load\`,
\`npm run db:migrate\`) read the same variables. Empty counts as unset.

## What to set

Where the service listens, its database, its first admin key, Redis, retention.

${table(CONFIG_VARIABLES.set, seen)}

## What to tune

Pools, timeouts, buffers and limits. The defaults suit one instance on a few cores; change one when a
metric or a measurement says so.

${table(CONFIG_VARIABLES.tune, seen)}
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(CONFIGURATION_DOCS, renderConfigurationDocs());
  process.stdout.write('wrote docs/configuration.md\n');
}
