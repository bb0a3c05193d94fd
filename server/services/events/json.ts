/**
 * Checks that a value is plain JSON that PostgreSQL's jsonb and JavaScript can both hold safely,
 * within size bounds. Reports every problem with the path where it sits, so a client can fix it.
 */

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface JsonBounds {
  /** Largest allowed size of the value serialized as JSON, in bytes (UTF-8). */
  maxBytes: number;
  /** Deepest allowed nesting; the top-level object is depth 1. */
  maxDepth: number;
  /** Most object keys allowed, summed over every nested object. */
  maxKeys: number;
  /** Longest allowed array. */
  maxArrayLength: number;
  /**
   * Most values the check visits (every object, array, string, number, boolean and null counts).
   * Bounds the walk's work whatever the input's shape, shared references included, before the
   * value is ever serialized.
   */
  maxValues: number;
}

export interface JsonProblem {
  path: (string | number)[];
  message: string;
}

// Keys that would reach an object's prototype when code copies or merges the value.
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is one of the characters looked for.
const MAYBE_UNSTORABLE = /[\u0000\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why a string cannot be stored, or undefined if it can. PostgreSQL refuses NUL in text and jsonb
 * (SQLSTATE 22P05) and unpaired surrogates in jsonb; we refuse both before the insert.
 */
export function unstorableTextReason(value: string): string | undefined {
  // One scan settles almost every string; only one holding NUL or a surrogate needs a closer look.
  if (!MAYBE_UNSTORABLE.test(value)) return undefined;
  if (value.includes('\u0000')) return 'must not contain the NUL character (\\u0000)';
  if (LONE_SURROGATE.test(value)) return 'must not contain an unpaired UTF-16 surrogate';
  return undefined;
}

const UNSTORABLE_CHARACTERS = new RegExp(`\\u0000|${LONE_SURROGATE.source}`, 'g');

/**
 * The text with what PostgreSQL cannot store (NUL, unpaired surrogates) replaced by U+FFFD: for
 * foreign formats, whose records are kept rather than refused for a stray character.
 */
export function storableText(value: string): string {
  return MAYBE_UNSTORABLE.test(value) ? value.replace(UNSTORABLE_CHARACTERS, '\uFFFD') : value;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Returns the problems found (at most a few, to keep error bodies small); empty means valid. */
export function findJsonProblems(root: unknown, bounds: JsonBounds): JsonProblem[] {
  const problems: JsonProblem[] = [];
  let keyCount = 0;
  let visited = 0;
  let overBudget = false;
  const MAX_PROBLEMS = 5;

  const visit = (value: unknown, path: (string | number)[], depth: number): void => {
    if (problems.length >= MAX_PROBLEMS || overBudget) return;
    visited += 1;
    if (visited > bounds.maxValues) {
      overBudget = true;
      problems.push({ path, message: `More than ${bounds.maxValues} values in total` });
      return;
    }
    if (value === null || typeof value === 'boolean') return;
    if (typeof value === 'string') {
      const reason = unstorableTextReason(value);
      if (reason) problems.push({ path, message: `String ${reason}` });
      return;
    }
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) problems.push({ path, message: 'Number must be finite (JSON has no NaN or Infinity)' });
      return;
    }
    if (depth > bounds.maxDepth) {
      problems.push({ path, message: `Nesting deeper than ${bounds.maxDepth} levels` });
      return;
    }
    if (Array.isArray(value)) {
      if (value.length > bounds.maxArrayLength) {
        problems.push({ path, message: `Array longer than ${bounds.maxArrayLength} items` });
        return;
      }
      for (let index = 0; index < value.length && !overBudget; index += 1) visit(value[index], [...path, index], depth + 1);
      return;
    }
    if (isPlainObject(value)) {
      for (const key of Object.keys(value)) {
        if (overBudget) return;
        keyCount += 1;
        if (keyCount > bounds.maxKeys) {
          problems.push({ path, message: `More than ${bounds.maxKeys} keys in total` });
          return;
        }
        if (FORBIDDEN_KEYS.has(key)) {
          problems.push({ path: [...path, key], message: `Key "${key}" is not allowed` });
          continue;
        }
        const reason = unstorableTextReason(key);
        if (reason) {
          problems.push({ path, message: `Key ${reason}` });
          continue;
        }
        visit(value[key], [...path, key], depth + 1);
      }
      return;
    }
    problems.push({ path, message: `Value of type ${describeType(value)} is not JSON` });
  };

  visit(root, [], 1);
  // Serialized only once the walk has proved the value small: a graph of shared references can
  // stand for far more text than memory holds.
  if (problems.length === 0) {
    const bytes = Buffer.byteLength(JSON.stringify(root), 'utf8');
    if (bytes > bounds.maxBytes) problems.push({ path: [], message: `Serialized size ${bytes} bytes exceeds ${bounds.maxBytes}` });
  }
  return problems;
}

/**
 * True exactly when `findJsonProblems(root, bounds)` finds nothing. Faster on the hot path: it
 * stops at the first problem, builds no paths or messages, and serializes the value only when the
 * walk cannot prove it small enough.
 */
export function isJsonWithinBounds(root: unknown, bounds: JsonBounds): boolean {
  const walk: JsonWalk = { values: 0, keys: 0, maxSerializedBytes: 0 };
  if (!fitsJsonBounds(root, 1, bounds, walk)) return false;
  return walk.maxSerializedBytes <= bounds.maxBytes || Buffer.byteLength(JSON.stringify(root), 'utf8') <= bounds.maxBytes;
}

interface JsonWalk {
  values: number;
  keys: number;
  /** An upper bound on the value's size serialized as JSON, in UTF-8 bytes. */
  maxSerializedBytes: number;
}

// Upper bounds on serialized sizes. A UTF-16 unit takes at most 6 bytes in JSON (`\u001f`; UTF-8
// needs at most 3 per unit); a JavaScript number prints in at most 25 characters
// (`-0.0000012345678901234567`); `false` is the longest literal.
const MAX_BYTES_PER_UNIT = 6;
const MAX_NUMBER_BYTES = 25;
const MAX_LITERAL_BYTES = 5;

/** The checks of findJsonProblems' walk, in the same order, as a yes or no. */
function fitsJsonBounds(value: unknown, depth: number, bounds: JsonBounds, walk: JsonWalk): boolean {
  walk.values += 1;
  if (walk.values > bounds.maxValues) return false;
  if (value === null) {
    walk.maxSerializedBytes += MAX_LITERAL_BYTES;
    return true;
  }
  switch (typeof value) {
    case 'boolean':
      walk.maxSerializedBytes += MAX_LITERAL_BYTES;
      return true;
    case 'string':
      walk.maxSerializedBytes += 2 + MAX_BYTES_PER_UNIT * value.length;
      return unstorableTextReason(value) === undefined;
    case 'number':
      walk.maxSerializedBytes += MAX_NUMBER_BYTES;
      return Number.isFinite(value);
    case 'object':
      break;
    default:
      return false;
  }
  if (depth > bounds.maxDepth) return false;
  if (Array.isArray(value)) {
    if (value.length > bounds.maxArrayLength) return false;
    // Brackets and a comma per item.
    walk.maxSerializedBytes += 2 + value.length;
    for (let index = 0; index < value.length; index += 1) {
      if (!fitsJsonBounds(value[index], depth + 1, bounds, walk)) return false;
    }
    return true;
  }
  if (!isPlainObject(value)) return false;
  walk.maxSerializedBytes += 2;
  for (const key of Object.keys(value)) {
    walk.keys += 1;
    if (walk.keys > bounds.maxKeys || FORBIDDEN_KEYS.has(key) || unstorableTextReason(key) !== undefined) return false;
    // The quoted key, a colon and a comma.
    walk.maxSerializedBytes += 4 + MAX_BYTES_PER_UNIT * key.length;
    if (!fitsJsonBounds(value[key], depth + 1, bounds, walk)) return false;
  }
  return true;
}

function describeType(value: unknown): string {
  if (value instanceof Date) return 'Date';
  if (typeof value === 'object' && value !== null) return value.constructor?.name ?? 'object';
  return typeof value;
}
