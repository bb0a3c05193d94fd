import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../server/config.ts';

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
    expect(loadConfig({ RATE_LIMIT_WORKSPACE_INGEST_EPS: '10', RATE_LIMIT_WORKSPACE_INGEST_BURST: '0' }).workspaceRateLimits.ingest).toEqual({ eventsPerSecond: 10, burst: 0 });
    expect(() => loadConfig({ RATE_LIMIT_WORKSPACE_READ_EPS: '0' })).toThrow(/RATE_LIMIT_WORKSPACE_READ_EPS/);
  });
});
