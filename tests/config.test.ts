import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CONFIGURATION_DOCS, renderConfigurationDocs } from '../scripts/config-docs.ts';
import { CONFIG_VARIABLES, ConfigError, heapLimitForBounds, loadConfig } from '../server/config.ts';

describe('configuration from the environment', () => {
  it('uses defaults that run the service with nothing installed', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 3000, host: '0.0.0.0', databaseUrl: undefined, pgliteDir: './.data' });
    expect(config.limits).toMatchObject({ maxBatchEvents: 1000, maxBodyBytes: 1024 * 1024 });
  });

  it('treats an empty DATABASE_URL as unset, so PGlite is used', () => {
    expect(loadConfig({ DATABASE_URL: '' }).databaseUrl).toBeUndefined();
  });

  it('names every bad variable in one readable error', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', MAX_BATCH_EVENTS: '0' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain('PORT');
    expect(message).toContain('DATABASE_URL: must start with postgres://');
    expect(message).toContain('MAX_BATCH_EVENTS');
  });
});

describe('tenant bounds in the configuration', () => {
  it('caps retention overrides at RETENTION_MAX_DAYS (a year by default, never below RETENTION_DAYS) and refuses a maximum below the default', () => {
    expect(loadConfig({}).retention).toMatchObject({ defaultDays: 90, maxDays: 365 });
    expect(loadConfig({ RETENTION_DAYS: '400' }).retention.maxDays).toBe(400);
    expect(loadConfig({ RETENTION_DAYS: '30', RETENTION_MAX_DAYS: '30' }).retention.maxDays).toBe(30);
    expect(() => loadConfig({ RETENTION_DAYS: '90', RETENTION_MAX_DAYS: '60' })).toThrow(/RETENTION_MAX_DAYS: must be at least RETENTION_DAYS/);
  });

  it('gives every workspace a default rate ceiling per key kind, above the default of one key', () => {
    const config = loadConfig({});
    expect(config.workspaceRateLimits).toEqual({
      ingest: { eventsPerSecond: 5000, burst: 25_000 },
      read: { eventsPerSecond: 100, burst: 400 },
      admin: { eventsPerSecond: 40, burst: 200 },
    });
    for (const kind of ['ingest', 'read', 'admin'] as const) {
      expect(config.workspaceRateLimits[kind].eventsPerSecond).toBeGreaterThan(config.rateLimits[kind].eventsPerSecond);
    }
    expect(loadConfig({ RATE_LIMIT_WORKSPACE_INGEST_EPS: '10', RATE_LIMIT_WORKSPACE_INGEST_BURST: '0' }).workspaceRateLimits.ingest).toEqual({
      eventsPerSecond: 10,
      burst: 0,
    });
    expect(() => loadConfig({ RATE_LIMIT_WORKSPACE_READ_EPS: '0' })).toThrow(/RATE_LIMIT_WORKSPACE_READ_EPS/);
  });
});

describe('rules across variables, checked by the loader', () => {
  it('refuses LIVE_BUS=redis without REDIS_URL, and a read replica without its primary', () => {
    expect(() => loadConfig({ LIVE_BUS: 'redis' })).toThrow(/LIVE_BUS: "redis" needs REDIS_URL/);
    expect(loadConfig({ LIVE_BUS: 'redis', REDIS_URL: 'redis://127.0.0.1:6379' }).live.bus).toBe('redis');
    expect(() => loadConfig({ DATABASE_READ_URL: 'postgres://replica/db' })).toThrow(/DATABASE_READ_URL: a read replica needs DATABASE_URL/);
    expect(loadConfig({ DATABASE_URL: 'postgres://primary/db', DATABASE_READ_URL: 'postgres://replica/db' }).databaseReadUrl).toBe('postgres://replica/db');
  });

  it('names every broken rule at once, and only over values that are each valid', () => {
    const both = () => loadConfig({ LIVE_BUS: 'redis', RETENTION_DAYS: '90', RETENTION_MAX_DAYS: '60' });
    expect(both).toThrow(/LIVE_BUS: "redis" needs REDIS_URL/);
    expect(both).toThrow(/RETENTION_MAX_DAYS: must be at least RETENTION_DAYS \(90\)/);
    // RETENTION_DAYS is out of bounds: that is the one message, not a comparison with it too.
    expect(() => loadConfig({ RETENTION_DAYS: '5000', RETENTION_MAX_DAYS: '60' })).toThrow(/^Invalid configuration:\n {2}RETENTION_DAYS: [^\n]*$/);
  });

  it('caps concurrent flushes at the write pool, since each flush holds one of its connections', () => {
    expect(loadConfig({}).groupCommit.maxConcurrentFlushes).toBe(4);
    expect(loadConfig({ DATABASE_POOL_MAX: '2' }).groupCommit.maxConcurrentFlushes).toBe(2);
    expect(loadConfig({ DATABASE_POOL_MAX: '20', INGEST_CONCURRENT_FLUSHES: '8' }).groupCommit.maxConcurrentFlushes).toBe(8);
  });

  it('resolves LIVE_BUS=auto and the replay window defaults from REDIS_URL', () => {
    expect(loadConfig({}).live).toMatchObject({ bus: 'memory', replayEvents: 10_000, replayBytes: 64 * 1024 * 1024 });
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).live).toMatchObject({ bus: 'redis', replayEvents: 100_000, replayBytes: 256 * 1024 * 1024 });
  });
});

describe('memory bounds in the configuration', () => {
  const MiB = 1024 * 1024;

  it('bounds request bodies in flight at 32 MiB by default, never below one body of the largest size', () => {
    expect(loadConfig({}).limits.maxInflightBodyBytes).toBe(32 * MiB);
    expect(loadConfig({ MAX_BODY_BYTES: String(2 * MiB), MAX_INFLIGHT_BODY_BYTES: String(2 * MiB) }).limits.maxInflightBodyBytes).toBe(2 * MiB);
    expect(() => loadConfig({ MAX_BODY_BYTES: String(2 * MiB), MAX_INFLIGHT_BODY_BYTES: String(MiB) })).toThrow(
      /MAX_INFLIGHT_BODY_BYTES: must be at least MAX_BODY_BYTES \(2097152\)/,
    );
  });

  it('sizes the heap limit from the bounds with room to spare over what they let the service hold', () => {
    const bounds = { maxInflightBodyBytes: 32 * MiB, heapReplayBytes: 64 * MiB };
    const limitMb = heapLimitForBounds(bounds);
    // Far below V8's default of several GB, above everything the bounds allow to be live at once.
    expect(limitMb).toBeLessThan(1024);
    expect(limitMb * MiB).toBeGreaterThan(bounds.maxInflightBodyBytes * 4 + bounds.heapReplayBytes * 2 + 128 * MiB);
    expect(heapLimitForBounds({ ...bounds, maxInflightBodyBytes: 256 * MiB })).toBeGreaterThan(limitMb + 256);
    expect(heapLimitForBounds({ ...bounds, heapReplayBytes: 0 })).toBeLessThan(limitMb);
  });

  it('counts the replay window in the heap limit only when it lives in the heap, and lets the operator set the limit', () => {
    expect(loadConfig({}).heapLimitMb).toBe(heapLimitForBounds({ maxInflightBodyBytes: 32 * MiB, heapReplayBytes: 64 * MiB }));
    expect(loadConfig({ LIVE_REPLAY_BYTES: String(8 * MiB) }).heapLimitMb).toBe(
      heapLimitForBounds({ maxInflightBodyBytes: 32 * MiB, heapReplayBytes: 8 * MiB }),
    );
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).heapLimitMb).toBe(heapLimitForBounds({ maxInflightBodyBytes: 32 * MiB, heapReplayBytes: 0 }));
    expect(loadConfig({ NODE_HEAP_LIMIT_MB: '2048' }).heapLimitMb).toBe(2048);
    expect(() => loadConfig({ NODE_HEAP_LIMIT_MB: '16' })).toThrow(/NODE_HEAP_LIMIT_MB/);
  });
});

describe('the configuration reference', () => {
  it('declares each variable once, with a description and a group', () => {
    const names = [...Object.keys(CONFIG_VARIABLES.set), ...Object.keys(CONFIG_VARIABLES.tune)];
    expect(new Set(names).size).toBe(names.length);
    for (const group of [CONFIG_VARIABLES.set, CONFIG_VARIABLES.tune]) {
      for (const [name, schema] of Object.entries(group)) expect(schema.description, name).toBeTruthy();
    }
  });

  it('docs/configuration.md is what the schema in server/config.ts generates', async () => {
    const written = await readFile(CONFIGURATION_DOCS, 'utf8').catch(() => '(missing)');
    expect(written, 'docs/configuration.md is out of date: run `npm run docs:config` and commit the result').toBe(renderConfigurationDocs());
  });
});
