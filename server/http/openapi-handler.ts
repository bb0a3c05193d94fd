import { TRPCError } from '@trpc/server';
import { createOpenApiNodeHttpHandler, type CreateOpenApiNodeHttpHandlerOptions } from 'trpc-to-openapi';
import type { AppRouter } from '../routers/index.ts';

export interface OpenApiRequestContext {
  requestId: string;
  authorization: string | undefined;
}

type HandlerOptions = Omit<CreateOpenApiNodeHttpHandlerOptions<AppRouter, never, never>, 'createContext' | 'router'> & {
  router: AppRouter;
  endpoint: string;
  createContext: (request: OpenApiRequestContext) => unknown;
};

const REQUEST_CONTEXT = Symbol('openApiRequestContext');

/**
 * The plain-JSON face as a fetch handler, built once. trpc-to-openapi's own fetch adapter builds a
 * new handler on every request, re-walking the router and (outside production) regenerating the
 * whole OpenAPI document each time, a cost larger than the call itself; this keeps its request shim
 * and hoists the handler.
 * @see https://github.com/mcampa/trpc-to-openapi/blob/master/src/adapters/fetch.ts
 */
export function createOpenApiRequestHandler(options: HandlerOptions) {
  const handler = createOpenApiNodeHttpHandler({
    ...options,
    createContext: ({ req }: { req: unknown }) => options.createContext((req as { [REQUEST_CONTEXT]: OpenApiRequestContext })[REQUEST_CONTEXT]),
  } as unknown as CreateOpenApiNodeHttpHandlerOptions<AppRouter, never, never>) as unknown as (req: unknown, res: unknown) => Promise<void>;

  return async (request: Request, context: OpenApiRequestContext): Promise<Response> => {
    const url = new URL(request.url);
    // The prefix comes off the path only: a host named api.* also holds "/api" in the URL.
    if (url.pathname.startsWith(options.endpoint)) url.pathname = url.pathname.slice(options.endpoint.length);
    const body = await readBody(request);
    const proxy = new Proxy(request, {
      get(target, property) {
        if (property === 'url') return url.toString();
        if (property === REQUEST_CONTEXT) return context;
        if (property === 'body') {
          if (!body.ok) throw new TRPCError({ code: 'PARSE_ERROR', message: 'Failed to parse request body', cause: body.cause });
          return body.data;
        }
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return new Promise<Response>((resolve) => {
      const headers = new Headers();
      let status = 200;
      const response = {
        setHeader(key: string, value: string | string[]) {
          if (typeof value === 'string') headers.set(key, value);
          else for (const item of value) headers.append(key, item);
        },
        get statusCode() {
          return status;
        },
        set statusCode(code: number) {
          status = code;
        },
        end(text: string) {
          resolve(new Response(text, { status, headers }));
        },
      };
      void handler(proxy, response);
    });
  };
}

async function readBody(request: Request): Promise<{ ok: true; data: unknown } | { ok: false; cause: unknown }> {
  const contentType = request.headers.get('content-type') ?? '';
  try {
    if (contentType.includes('application/json')) return { ok: true, data: JSON.parse(await request.text()) };
    return { ok: true, data: request.body };
  } catch (cause) {
    return { ok: false, cause };
  }
}
