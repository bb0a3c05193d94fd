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
export function decompressRequestBody({ maxBytes }: { maxBytes: number }): MiddlewareHandler {
  return async (c, next) => {
    const encoding = c.req.header('content-encoding')?.trim().toLowerCase();
    if (!encoding || encoding === 'identity') return next();
    if (!SUPPORTED_ENCODINGS.has(encoding)) {
      return c.json(errorBody('UNSUPPORTED_MEDIA_TYPE', `Unsupported Content-Encoding "${encoding}"; use gzip, deflate or none`), 415);
    }
    const body = c.req.raw.body;
    if (!body) return next();

    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = body.pipeThrough(new DecompressionStream(encoding as 'gzip' | 'deflate')).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > maxBytes) {
          await reader.cancel().catch(() => {});
          return c.json(errorBody('PAYLOAD_TOO_LARGE', `Decompressed request body exceeds ${maxBytes} bytes`), 413);
        }
        chunks.push(value);
      }
    } catch {
      return c.json(errorBody('BAD_REQUEST', `Request body is not valid ${encoding} data`), 400);
    }

    const headers = new Headers(c.req.raw.headers);
    headers.delete('content-encoding');
    headers.set('content-length', String(total));
    c.req.raw = new Request(c.req.raw.url, { method: c.req.raw.method, headers, body: Buffer.concat(chunks) });
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
