import { describe, expect, it } from 'vitest';
import { createLogger } from '../server/logger.ts';

function capture() {
  const lines: string[] = [];
  return { logger: createLogger('info', {}, (line) => lines.push(line)), lines };
}

describe('the logger', () => {
  it('writes an error with its name, code, message, stack and cause chain', () => {
    const { logger, lines } = capture();
    const cause = Object.assign(new Error('duplicate key value violates unique constraint "events_pkey"'), { code: '23505' });
    logger.error('procedure failed', { error: new Error('write failed', { cause }) });
    const record = JSON.parse(lines[0]!) as { level: string; msg: string; error: { message: string; stack: string; cause: { code: string; message: string } } };
    expect(record).toMatchObject({ level: 'error', msg: 'procedure failed', error: { message: 'write failed', cause: { code: '23505' } } });
    expect(record.error.stack).toContain('write failed');
    expect(record.error.cause.message).toContain('events_pkey');
  });

  it('clips an error message that quotes a whole statement and its parameters, saying how much it left out', () => {
    const { logger, lines } = capture();
    const document = JSON.stringify(Array.from({ length: 2000 }, (_, index) => ({ id: index, name: 'button.click', metadata: { path: '/checkout' } })));
    const driverError = new Error(`Failed query: with input as (select ...)\nparams: ${document}`);
    logger.error('procedure failed', { error: new Error('flush failed', { cause: driverError }) });
    expect(lines[0]!.length).toBeLessThan(10_000);
    const record = JSON.parse(lines[0]!) as { error: { cause: { message: string; stack: string } } };
    expect(record.error.cause.message.startsWith('Failed query: with input as')).toBe(true);
    expect(record.error.cause.message).toMatch(/…\[\d+ more characters\]$/);
    // The stack keeps its frames: only its first line, the message again, is clipped.
    expect(record.error.cause.stack).toMatch(/more characters\]\n\s+at /);
  });
});
