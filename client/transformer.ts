import superjson, { type SuperJSONResult } from 'superjson';

/**
 * superjson as the service expects it from a client. superjson notes every object that appears
 * twice in the input (the same metadata object in two events, say) as a shared reference, even
 * though its JSON already holds a full copy at each place; the service refuses shared references
 * (they can declare enormous graphs in a few bytes), so they are dropped here, which loses
 * nothing. A circular value cannot be sent at all: JSON has no way to spell it.
 */
export function serializeInput(value: unknown): SuperJSONResult {
  const result = superjson.serialize(value);
  const references = result.meta?.referentialEqualities;
  if (!result.meta || references === undefined) return result;
  if (isCircular(references)) throw new TypeError('Cannot send a circular value: JSON has no way to spell it');
  const { referentialEqualities: _dropped, ...meta } = result.meta;
  return Object.keys(meta).some((key) => key !== 'v') ? { json: result.json, meta } : { json: result.json };
}

/** A reference to the root, or a copy found inside its own original, is a cycle. */
function isCircular(references: NonNullable<NonNullable<SuperJSONResult['meta']>['referentialEqualities']>): boolean {
  if (Array.isArray(references)) return true;
  return Object.entries(references).some(([original, copies]) => copies.some((copy) => copy.startsWith(`${original}.`)));
}

/** The transformer for tRPC links talking to this service. */
export const clientTransformer = {
  input: { serialize: serializeInput, deserialize: (value: SuperJSONResult) => superjson.deserialize(value) },
  output: { serialize: (value: unknown) => superjson.serialize(value), deserialize: (value: SuperJSONResult) => superjson.deserialize(value) },
};
