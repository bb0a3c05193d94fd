import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

describe('client package', () => {
  // Every entry the package exports, the retry policy the CLI and dashboard share with it, and the
  // module through which the client takes the service's types (types only: nothing at run time).
  it.each(['client/index.ts', 'client/tracker.ts', 'client/web-vitals.ts', 'client/retry-policy.ts', 'client/uuid7.ts', 'client/router.ts'])(
    '%s pulls no server or database module into its runtime graph',
    async (entry) => {
      const result = await build({
        entryPoints: [entry],
        bundle: true,
        write: false,
        metafile: true,
        format: 'esm',
        platform: 'browser',
        logLevel: 'silent',
      });
      const modules = Object.keys(result.metafile.inputs);
      expect(modules).toContain(entry);
      const serverSide = modules.filter((path) => /^(server|db)\//.test(path) || /drizzle-orm|postgres|pglite|hono|zod/.test(path));
      expect(serverSide).toEqual([]);
    },
  );

  it('builds the typed client on @trpc/client', async () => {
    const result = await build({
      entryPoints: ['client/index.ts'],
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      platform: 'browser',
      logLevel: 'silent',
    });
    expect(Object.keys(result.metafile.inputs).some((path) => path.includes('@trpc/client'))).toBe(true);
  });
});
