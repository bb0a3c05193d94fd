import { inflateBounded } from '../../http/request-body.ts';
import { storableText } from '../../services/events/json.ts';

/** Why a capture request's body could not be read: answered with `status` and this message. */
export class CaptureBodyError extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message);
    this.name = 'CaptureBodyError';
  }
}

/** A capture request as it arrived: the body after any `Content-Encoding` was undone, and its URL's query. */
export interface CaptureRequest {
  body: Uint8Array;
  contentType: string | undefined;
  query: URLSearchParams;
  /** Largest decoded body accepted, in bytes (the service's body limit). */
  maxBytes: number;
}

/** The decoded JSON of a capture request and the UTF-8 text it was parsed from (ids of events without a uuid are derived from it). */
export interface CaptureBody {
  payload: unknown;
  text: string;
}

const GZIP_MAGIC = [0x1f, 0x8b] as const;
const BASE64_TEXT = /^[A-Za-z0-9+/\-_]*={0,2}$/;

function isGzip(bytes: Uint8Array): boolean {
  return bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1];
}

/**
 * Inflates gzip that came without a `Content-Encoding` header (posthog-js sends `gzip-js` as
 * text/plain so browsers skip the CORS preflight). As for a declared encoding, the output is
 * streamed and refused with 413 as soon as it passes `maxBytes`, so a small bomb never grows whole.
 */
export async function gunzipBounded(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  const inflated = await inflateBounded(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream(), 'gzip', maxBytes);
  if (inflated === 'too_large') throw new CaptureBodyError(413, `Decompressed request body exceeds ${maxBytes} bytes`);
  if (inflated === 'invalid') throw new CaptureBodyError(400, 'Request body starts like gzip but is not valid gzip data');
  return inflated;
}

function decodeBase64(text: string): string {
  // A form-encoded `+` that reached us unescaped was read as a space; base64 has no spaces.
  const compact = text.replaceAll(' ', '+').replace(/\s+/g, '');
  if (!BASE64_TEXT.test(compact)) throw new CaptureBodyError(400, 'compression=base64, but the data is not base64');
  return Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64').toString('utf8');
}

function utf8(bytes: Uint8Array): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
}

/** The data of a form-encoded body (`data=<base64 or JSON>&compression=…`), as page-unload beacons send it. */
function formFields(text: string): URLSearchParams {
  try {
    return new URLSearchParams(text);
  } catch {
    throw new CaptureBodyError(400, 'Form body could not be read');
  }
}

function isFormBody(contentType: string | undefined, text: string): boolean {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  return mediaType === 'application/x-www-form-urlencoded' || text.startsWith('data=');
}

/**
 * The `compression` a capture request declares, from its form or its URL. `gzip-js` and `gzip`
 * need nothing more: gzip is recognised by its first bytes. `lz64` (lz-string) is refused: the
 * pinned posthog-js never sends it, and its decoder would be this adapter's largest part.
 */
function declaredCompression(form: URLSearchParams | undefined, query: URLSearchParams): string | undefined {
  const value = form?.get('compression') ?? query.get('compression') ?? undefined;
  if (value === 'lz64' || value === 'lz-string') {
    throw new CaptureBodyError(400, 'compression=lz64 is not accepted: send gzip-js, base64 or uncompressed JSON');
  }
  return value || undefined;
}

/** Deepest nesting read: PostHog events are a few levels deep; far deeper JSON is a mistake or an attack on the parser's stack. */
export const MAX_JSON_DEPTH = 256;

/** True when the JSON text nests objects and arrays deeper than `limit` (strings skipped, escapes honoured). */
function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index += 1) {
    const char = text.charCodeAt(index);
    if (inString) {
      if (char === 0x5c) index += 1;
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) inString = true;
    else if (char === 0x7b || char === 0x5b) {
      depth += 1;
      if (depth > limit) return true;
    } else if (char === 0x7d || char === 0x5d) depth -= 1;
  }
  return false;
}

function parseJson(text: string): unknown {
  // Checked first: the reviver below walks the value recursively.
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) throw new CaptureBodyError(400, `Request body nests JSON deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    // What PostgreSQL cannot store (NUL, unpaired surrogates) is replaced rather than refusing the event.
    return JSON.parse(text, (_key, value: unknown) => (typeof value === 'string' ? storableText(value) : value));
  } catch {
    throw new CaptureBodyError(400, 'Request body is not valid JSON');
  }
}

/** JSON text, or base64 of it when that is what was declared (or when the text cannot be JSON). */
function jsonText(data: string, compression: string | undefined): string {
  const trimmed = data.trimStart();
  if (compression === 'base64' || !(trimmed.startsWith('{') || trimmed.startsWith('['))) {
    if (trimmed === '') throw new CaptureBodyError(400, 'Request body is empty');
    return decodeBase64(trimmed);
  }
  return data;
}

/**
 * Reads every form PostHog SDKs send a capture in: JSON; gzip (with a header, undone before
 * this, or recognised by its magic bytes); `compression=base64`; and a form body, or a GET's
 * query, carrying `data=<base64 or JSON>`.
 */
export async function readCaptureBody({ body, contentType, query, maxBytes }: CaptureRequest): Promise<CaptureBody> {
  let bytes = body;
  if (bytes.byteLength === 0) {
    const data = query.get('data');
    if (data === null) throw new CaptureBodyError(400, 'Request body is empty');
    const text = jsonText(data, declaredCompression(undefined, query));
    return { payload: parseJson(text), text };
  }
  if (isGzip(bytes)) bytes = await gunzipBounded(bytes, maxBytes);
  const raw = utf8(bytes);
  if (isFormBody(contentType, raw)) {
    const form = formFields(raw);
    const data = form.get('data');
    if (data === null) throw new CaptureBodyError(400, 'Form body has no "data" field');
    const text = jsonText(data, declaredCompression(form, query));
    return { payload: parseJson(text), text };
  }
  const text = jsonText(raw, declaredCompression(undefined, query));
  return { payload: parseJson(text), text };
}
