import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  PATCHES,
  POSTGRES_COPY_ERROR_ORIGINAL,
  POSTGRES_COPY_ERROR_PATCHED,
  TRPC_OBJECT_SPREAD_ORIGINAL,
  TRPC_OBJECT_SPREAD_PATCHED,
} from '../scripts/patch-dependencies.mjs';

type Spread = (target: object, ...sources: unknown[]) => object;

const [trpcPatch] = PATCHES;
const trpcDir = fileURLToPath(new URL('../node_modules/@trpc/server/', import.meta.url));
const [esmFile, cjsFile] = trpcPatch!.files.map((file) => `${trpcDir}${file}`) as [string, string];

/** The helper exactly as published, with the key-coercion helpers it calls (read from the same file), in the given mode. */
function publishedHelper(strict: boolean): Spread {
  const text = readFileSync(esmFile, 'utf8');
  const helpers = text.slice(text.indexOf('function _typeof(o)'), text.indexOf(TRPC_OBJECT_SPREAD_PATCHED));
  return new Function(`${strict ? '"use strict";' : ''}${helpers}${TRPC_OBJECT_SPREAD_ORIGINAL}return _objectSpread2;`)() as Spread;
}

const SYMBOLS = [Symbol('one'), Symbol('two'), Symbol.iterator];
const KEYS = ['a', 'b', 'ctx', '0', '10', '__proto__', 'constructor', 'toString', 0, 1, 2] as const;

interface PropertySpec {
  key: (typeof KEYS)[number];
  kind: 'value' | 'hidden value' | 'getter' | 'hidden getter' | 'read-only';
  value: number;
}
type SourceSpec =
  | { kind: 'object'; props: PropertySpec[]; inherited: boolean; locked: boolean }
  | { kind: 'null' }
  | { kind: 'undefined' }
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number };

const propertySpec = fc.record({
  key: fc.constantFrom(...KEYS),
  kind: fc.constantFrom('value', 'hidden value', 'getter', 'hidden getter', 'read-only'),
  value: fc.integer({ min: 0, max: 9 }),
});
const objectSpec = fc.record({
  kind: fc.constant('object' as const),
  props: fc.array(propertySpec, { maxLength: 6 }),
  inherited: fc.boolean(),
  locked: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});
const sourceSpec: fc.Arbitrary<SourceSpec> = fc.oneof(
  { weight: 6, arbitrary: objectSpec },
  fc.constant({ kind: 'null' as const }),
  fc.constant({ kind: 'undefined' as const }),
  fc.record({ kind: fc.constant('string' as const), value: fc.string({ maxLength: 3 }) }),
  fc.record({ kind: fc.constant('number' as const), value: fc.integer() }),
);

const keyOf = (key: PropertySpec['key']) => (typeof key === 'number' ? SYMBOLS[key]! : key);
const keyName = (key: PropertyKey) => (typeof key === 'symbol' ? `@@${key.description}` : key);

/** Builds the objects a spec describes; every getter call is logged with its source and key. */
function build(spec: SourceSpec, label: string, log: string[]): unknown {
  if (spec.kind === 'null') return null;
  if (spec.kind === 'undefined') return undefined;
  if (spec.kind !== 'object') return spec.value;
  const object = Object.create(spec.inherited ? { a: 'inherited', [SYMBOLS[0]!]: 'inherited' } : Object.prototype) as object;
  for (const { key, kind, value } of spec.props) {
    const tag = `${label}.${String(keyName(keyOf(key)))}=${value}`;
    const get = Object.assign(
      () => {
        log.push(tag);
        return value;
      },
      { tag },
    );
    const enumerable = !kind.startsWith('hidden');
    Object.defineProperty(
      object,
      keyOf(key),
      kind.endsWith('getter') ? { get, enumerable, configurable: true } : { value, enumerable, configurable: true, writable: kind !== 'read-only' },
    );
  }
  // A target that takes no new properties: assigning one fails where defining one throws.
  if (spec.locked) Object.preventExtensions(object);
  return object;
}

/** What a spread produced, comparable across two runs: own properties in order with their descriptors, the prototype, the getter calls, or the error. */
function outcome(spread: Spread, target: SourceSpec & { kind: 'object' }, sources: SourceSpec[]) {
  const log: string[] = [];
  const targetObject = build(target, 'target', log) as object;
  const sourceObjects = sources.map((source, index) => build(source, `source${index + 1}`, log));
  log.length = 0;
  try {
    const result = spread(targetObject, ...sourceObjects);
    return {
      sameTarget: result === targetObject,
      prototype: Object.getPrototypeOf(result) === Object.prototype ? 'Object.prototype' : 'other',
      properties: Reflect.ownKeys(result).map((key) => {
        const { get, set, ...rest } = Object.getOwnPropertyDescriptor(result, key)!;
        return { key: keyName(key), ...rest, ...(get && { get: (get as { tag?: string }).tag }), ...(set && { set: 'setter' }) };
      }),
      getterCalls: log,
    };
  } catch (error) {
    return { threw: (error as Error).constructor.name, getterCalls: log };
  }
}

describe('the @trpc/server object-spread patch', () => {
  it('is in place in both published builds, which the installed package loads', async () => {
    for (const file of [esmFile, cjsFile]) {
      const text = readFileSync(file, 'utf8');
      expect(text).toContain(TRPC_OBJECT_SPREAD_PATCHED);
      expect(text).not.toContain(TRPC_OBJECT_SPREAD_ORIGINAL);
    }
    const esm = (await import(pathToFileURL(esmFile).href)) as { n: Spread };
    const cjs = createRequire(import.meta.url)(cjsFile) as { _objectSpread2: Spread };
    for (const spread of [esm.n, cjs._objectSpread2]) expect(spread.toString()).toContain('patched by telemetry-service');
    // The version the patch was written for is the one installed (else it would have been skipped).
    expect((JSON.parse(readFileSync(`${trpcDir}package.json`, 'utf8')) as { version: string }).version).toBe(trpcPatch!.version);
  });

  it('spreads like the published helper for arbitrary targets and sources: symbols, getters, hidden and read-only properties, non-extensible targets, null and primitive sources', async () => {
    const esm = ((await import(pathToFileURL(esmFile).href)) as { n: Spread }).n;
    const cjs = (createRequire(import.meta.url)(cjsFile) as { _objectSpread2: Spread })._objectSpread2;
    // The ES module build runs in strict mode, the CommonJS one does not: each is compared with the original in its mode.
    const pairs: [Spread, Spread][] = [
      [esm, publishedHelper(true)],
      [cjs, publishedHelper(false)],
    ];
    fc.assert(
      fc.property(objectSpec, fc.array(sourceSpec, { maxLength: 5 }), (target, sources) => {
        for (const [patched, original] of pairs) expect(outcome(patched, target, sources)).toEqual(outcome(original, target, sources));
      }),
      { numRuns: 2000 },
    );
  });

  it('spreads the way tRPC calls it: later sources override, getters read once, the literal at even positions copied as is', () => {
    const esm = publishedHelper(true);
    let reads = 0;
    const opts = {
      a: 1,
      get ctx() {
        reads += 1;
        return { user: 'x' };
      },
      [SYMBOLS[0]!]: 'symbol',
    };
    for (const spread of [esm, new Function(`${TRPC_OBJECT_SPREAD_PATCHED}return _objectSpread2;`)() as Spread]) {
      reads = 0;
      const merged = spread(spread({}, opts), {}, { a: 2 }) as Record<PropertyKey, unknown>;
      expect(merged).toEqual({ a: 2, ctx: { user: 'x' }, [SYMBOLS[0]!]: 'symbol' });
      expect(merged[SYMBOLS[0]!]).toBe('symbol');
      expect(reads).toBe(1);
    }
  });
});

describe('the postgres.js COPY error patch', () => {
  it('is in place in every build of the installed version (Node, CommonJS, workers)', () => {
    const copyPatch = PATCHES.find((patch) => patch.packageName === 'postgres')!;
    const postgresDir = fileURLToPath(new URL('../node_modules/postgres/', import.meta.url));
    expect((JSON.parse(readFileSync(`${postgresDir}package.json`, 'utf8')) as { version: string }).version).toBe(copyPatch.version);
    for (const file of copyPatch.files) {
      const text = readFileSync(`${postgresDir}${file}`, 'utf8');
      expect(text, file).toContain(POSTGRES_COPY_ERROR_PATCHED);
      expect(text, file).not.toContain(POSTGRES_COPY_ERROR_ORIGINAL);
    }
  });
});
