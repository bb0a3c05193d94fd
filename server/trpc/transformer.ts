import { TRPCError } from '@trpc/server';
import superjson from 'superjson';
import { DomainError } from '../errors.ts';

/**
 * superjson on the tRPC face, with procedure input held to plain data:
 *
 * - Shared references (`meta.referentialEqualities`) are refused before superjson rebuilds any
 *   graph: a few hundred bytes of them can declare a value with billions of paths. The project's
 *   clients never send them (client/transformer.ts), since every value they send is a tree.
 * - Value annotations may only restore what procedure inputs hold: Dates, `undefined` and the
 *   numbers JSON cannot spell. The rest (BigInt, Map, Set, Error, classes, ...) no input accepts,
 *   and some cost real work to build.
 * - The input is deserialized in place, never copied: superjson's copy silently drops a
 *   `__proto__` key, which would store the rest of an object the plain-JSON face refuses. The body
 *   was parsed for this request alone, so nothing else sees the change.
 */
const INPUT_VALUE_TYPES: ReadonlySet<unknown> = new Set(['Date', 'undefined', 'number']);

/** Most annotation nodes one input may carry; each costs a little work to apply. */
export const MAX_INPUT_ANNOTATIONS = 10_000;

const MAX_PATH_LENGTH = 200;

function refuse(message: string, path = ''): never {
  throw new TRPCError({ code: 'BAD_REQUEST', message, cause: new DomainError('invalid_input', message, { path }) });
}

/** A superjson path (`events.0.metadata`, dots escaped) as the dotted path error bodies use. */
function readablePath(value: unknown): string {
  if (typeof value !== 'string') return '';
  return value.slice(0, MAX_PATH_LENGTH).replace(/\\(.)/g, '$1');
}

/** Where the first declared shared reference sits, for the error. */
function firstReferencePath(annotations: unknown): string {
  if (Array.isArray(annotations)) {
    const [rootCopies, others] = annotations as [unknown, unknown];
    if (Array.isArray(rootCopies) && rootCopies.length > 0) return readablePath(rootCopies[0]);
    return firstReferencePath(others);
  }
  if (typeof annotations === 'object' && annotations !== null) {
    for (const [original, copies] of Object.entries(annotations)) {
      return readablePath(Array.isArray(copies) && copies.length > 0 ? copies[0] : original);
    }
  }
  return '';
}

/** Walks the value annotations (iteratively, with a budget) and refuses any type no input holds. */
function checkValueAnnotations(values: unknown): void {
  const pending: unknown[] = [values];
  for (let visited = 0; pending.length > 0; visited += 1) {
    if (visited >= MAX_INPUT_ANNOTATIONS) refuse(`Input carries more than ${MAX_INPUT_ANNOTATIONS} superjson annotations`);
    const node = pending.pop();
    if (Array.isArray(node)) {
      const [type, children] = node as [unknown, unknown];
      if (!INPUT_VALUE_TYPES.has(type)) refuse('Procedure input may carry only JSON, Dates and undefined (superjson annotation refused)');
      if (children !== undefined) pending.push(children);
    } else if (typeof node === 'object' && node !== null) {
      for (const child of Object.values(node)) pending.push(child);
    } else {
      refuse('Malformed superjson input');
    }
  }
}

function deserializeInput(payload: unknown): unknown {
  if (typeof payload !== 'object' || payload === null) refuse('Malformed superjson input: expected { "json": ... }');
  const { meta } = payload as { meta?: unknown };
  if (meta !== undefined && meta !== null) {
    if (typeof meta !== 'object') refuse('Malformed superjson input');
    const { referentialEqualities, values } = meta as { referentialEqualities?: unknown; values?: unknown };
    if (referentialEqualities !== undefined) {
      refuse(
        'Shared references (superjson referentialEqualities) are not accepted in procedure input: send each value in full',
        firstReferencePath(referentialEqualities),
      );
    }
    if (values !== undefined) checkValueAnnotations(values);
  }
  try {
    return superjson.deserialize(payload as never, { inPlace: true });
  } catch {
    // superjson's own messages name its internals; the caller needs only to know the input is bad.
    return refuse('Malformed superjson input');
  }
}

export const procedureTransformer = {
  input: { serialize: (value: unknown) => superjson.serialize(value), deserialize: deserializeInput },
  output: { serialize: (value: unknown) => superjson.serialize(value), deserialize: (value: unknown) => superjson.deserialize(value as never) },
};
