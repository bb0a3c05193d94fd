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
