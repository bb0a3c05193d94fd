import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';

const SUPPORTED_ENCODINGS = new Set(['gzip', 'deflate']);

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

/**
 * Accepts `Content-Encoding: gzip` or `deflate` request bodies. The body is inflated as a stream
 * and refused with 413 as soon as the inflated size passes `maxBytes`, so a small "zip bomb" never
 * grows past the limit in memory. The downstream handlers see a plain body.
 */
/**
 * A compressed body inflated as a stream, stopped as soon as it passes `maxBytes` (so a small bomb
 * never grows whole): the bytes, or why not.
 */
export async function inflateBounded(
  compressed: ReadableStream<Uint8Array<ArrayBuffer>>,
  format: CompressionFormat,
  maxBytes: number,
): Promise<Buffer<ArrayBuffer> | 'too_large' | 'invalid'> {
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let total = 0;
  const reader = compressed.pipeThrough(new DecompressionStream(format)).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        return 'too_large';
      }
      chunks.push(value);
    }
  } catch {
    return 'invalid';
  }
  return Buffer.concat(chunks);
}

export function decompressRequestBody({ maxBytes }: { maxBytes: number }): MiddlewareHandler {
  return async (c, next) => {
    const encoding = c.req.header('content-encoding')?.trim().toLowerCase();
    if (!encoding || encoding === 'identity') return next();
    if (!SUPPORTED_ENCODINGS.has(encoding)) {
      return c.json(errorBody('UNSUPPORTED_MEDIA_TYPE', `Unsupported Content-Encoding "${encoding}"; use gzip, deflate or none`), 415);
    }
    const body = c.req.raw.body;
    if (!body) return next();

    const inflated = await inflateBounded(body, encoding as CompressionFormat, maxBytes);
    if (inflated === 'too_large') return c.json(errorBody('PAYLOAD_TOO_LARGE', `Decompressed request body exceeds ${maxBytes} bytes`), 413);
    if (inflated === 'invalid') return c.json(errorBody('BAD_REQUEST', `Request body is not valid ${encoding} data`), 400);

    const headers = new Headers(c.req.raw.headers);
    headers.delete('content-encoding');
    headers.set('content-length', String(inflated.byteLength));
    c.req.raw = new Request(c.req.raw.url, { method: c.req.raw.method, headers, body: inflated });
    return next();
  };
}

/**
 * Refuses bodies over `maxBytes` with 413. A body with a Content-Length is judged by that header
 * alone (the HTTP parser never delivers more bytes than it declares), which leaves the body
 * untouched: reading `Request.body` here would turn off @hono/node-server's fast path for the
 * handler's own read, and that doubled the cost of a small ingest call. Chunked bodies are counted
 * as they stream, by Hono's bodyLimit.
 */
export function limitRequestBody({ maxBytes, onTooLarge }: { maxBytes: number; onTooLarge: (c: Context) => Response }): MiddlewareHandler {
  const streamingLimit = bodyLimit({ maxSize: maxBytes, onError: onTooLarge });
  return async (c, next) => {
    const declared = c.req.header('content-length');
    if (declared !== undefined && c.req.header('transfer-encoding') === undefined) {
      return Number(declared) > maxBytes ? onTooLarge(c) : next();
    }
    return streamingLimit(c, next);
  };
}

/** Bytes of request bodies held at once, shared by every route that reserves from it. */
export interface BodyBudget {
  /** Takes `bytes` if they fit (or if nothing is held, so one body is never refused forever); false when the budget is spent. */
  tryReserve(bytes: number): boolean;
  release(bytes: number): void;
  /** Bytes held now. */
  reservedBytes(): number;
}

export function createBodyBudget(maxBytes: number): BodyBudget {
  let reserved = 0;
  return {
    tryReserve(bytes) {
      if (reserved > 0 && reserved + bytes > maxBytes) return false;
      reserved += bytes;
      return true;
    },
    release(bytes) {
      reserved -= bytes;
    },
    reservedBytes: () => reserved,
  };
}

/**
 * Holds a request's body bytes in `budget` from before it is read until its answer is made, and
 * answers `onBusy` (a 503 with Retry-After) when they do not fit: what concurrent calls hold
 * (their bodies, the objects parsed from them, the events waiting for their commit) then has a
 * bound in bytes, whatever the number of connections. A body is counted by its Content-Length;
 * one that is chunked or compressed may grow to `maxBodyBytes` before it is refused, so it is
 * counted as that (a larger declared size counts as `maxBodyBytes` too: limitRequestBody refuses it
 * next). Mount before limitRequestBody and decompressRequestBody, which both may read a body whole.
 */
export function reserveRequestBody({
  budget,
  maxBodyBytes,
  onBusy,
}: {
  budget: BodyBudget;
  maxBodyBytes: number;
  onBusy: (c: Context) => Response;
}): MiddlewareHandler {
  return async (c, next) => {
    const bytes = bodyBytesToReserve(c, maxBodyBytes);
    if (bytes === 0) return next();
    if (!budget.tryReserve(bytes)) return onBusy(c);
    try {
      await next();
    } finally {
      budget.release(bytes);
    }
  };
}

function bodyBytesToReserve(c: Context, maxBodyBytes: number): number {
  const declared = c.req.header('content-length');
  const streamed = c.req.header('transfer-encoding') !== undefined;
  const encoding = c.req.header('content-encoding')?.trim().toLowerCase();
  const compressed = encoding !== undefined && encoding !== '' && encoding !== 'identity';
  if (declared !== undefined && !streamed) {
    const length = Number(declared);
    if (length === 0) return 0;
    if (!compressed && Number.isFinite(length) && length >= 0) return Math.min(length, maxBodyBytes);
    return maxBodyBytes;
  }
  return streamed || compressed ? maxBodyBytes : 0;
}
