import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

describe('client package', () => {
  it('pulls no server or database module into its runtime graph', async () => {
    const result = await build({
      entryPoints: ['client/index.ts'],
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      platform: 'browser',
      logLevel: 'silent',
    });
    const modules = Object.keys(result.metafile.inputs);
    expect(modules).toContain('client/index.ts');
    expect(modules.some((path) => path.includes('@trpc/client'))).toBe(true);
    const serverSide = modules.filter((path) => /^(server|db)\//.test(path) || /drizzle-orm|postgres|pglite|hono|zod/.test(path));
    expect(serverSide).toEqual([]);
  });
});
