import { createHmac, timingSafeEqual } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import type { Database } from '../../../db/database.ts';
import { apiKeys } from '../../../db/schema.ts';
import { DomainError } from '../../errors.ts';
import type { ApiKeyIdentity } from '../keys/keys.ts';

export type StreamTickets = ReturnType<typeof createStreamTickets>;

const TICKET_PREFIX = 'tlmt_';
const MAC_CONTEXT = 'telemetry live stream ticket v1\n';
const TICKET_PATTERN = /^tlmt_([A-Za-z0-9_-]{1,200})\.([A-Za-z0-9_-]{43})$/;
const MAX_CLOCK_SKEW_MS = 30_000;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Short-lived stream tickets: what a browser's EventSource (or any client) puts in a live stream's
 * URL instead of a key, since URLs end up in proxy and access logs. A ticket names the key that
 * minted it, one workspace and an expiry, and is signed with HMAC-SHA256 keyed by that key's
 * stored secret hash. So:
 *  - any instance can check it with what is already in the shared database: no table of tickets,
 *    no migration, nothing to clean up, nothing to share between instances but the database;
 *  - revoking (or rotating) the minting key invalidates its tickets at once, because checking one
 *    needs the key to be active, and the streams it opened end with the key's (they carry its id);
 *  - it opens live streams of its workspace only, with the rights of a read key bound to it, and
 *    only there: the service reads tickets from a subscription's connectionParams and nowhere else.
 * Someone who can read the database could sign tickets; they could read the events directly too.
 * A ticket stays valid until it expires (`ttlMs`), so a reconnect within that time may reuse it;
 * the typed client mints a fresh one for every connection.
 */
export function createStreamTickets({ db, ttlMs, now = Date.now }: { db: Database; ttlMs: number; now?: () => number }) {
  async function activeKey(keyId: string) {
    const [row] = await db.orm
      .select({
        id: apiKeys.id,
        secretHash: apiKeys.secretHash,
        rateLimitEventsPerSecond: apiKeys.rateLimitEventsPerSecond,
        rateLimitBurst: apiKeys.rateLimitBurst,
      })
      .from(apiKeys)
      .where(and(eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)))
      .limit(1);
    return row;
  }

  function sign(secretHash: string, payload: string): Buffer {
    return createHmac('sha256', Buffer.from(secretHash, 'hex'))
      .update(MAC_CONTEXT + payload)
      .digest();
  }

  /** A ticket for live streams of `workspaceId`, minted by the (already authenticated) key `keyId`. */
  async function mint(keyId: string, workspaceId: string): Promise<{ ticket: string; expiresAt: Date }> {
    const key = await activeKey(keyId);
    if (!key) throw new DomainError('unauthorized', 'Unknown or revoked API key');
    const expiresAt = now() + ttlMs;
    const payload = `${keyId}.${workspaceId}.${expiresAt}`;
    const ticket = `${TICKET_PREFIX}${Buffer.from(payload).toString('base64url')}.${sign(key.secretHash, payload).toString('base64url')}`;
    return { ticket, expiresAt: new Date(expiresAt) };
  }

  /**
   * The identity a ticket grants: its minting key's id (so its streams count against that key and
   * end when it is revoked), as a read key bound to the ticket's workspace. Undefined when the
   * ticket is malformed, forged, expired, or its key is no longer active.
   */
  async function redeem(ticket: string): Promise<ApiKeyIdentity | undefined> {
    const match = TICKET_PATTERN.exec(ticket);
    if (!match) return undefined;
    const payload = Buffer.from(match[1]!, 'base64url').toString('utf8');
    const [keyId = '', workspaceId = '', expiry = '', ...rest] = payload.split('.');
    if (rest.length > 0 || !UUID_PATTERN.test(keyId) || !UUID_PATTERN.test(workspaceId) || !/^\d{1,15}$/.test(expiry)) return undefined;
    const expiresAt = Number(expiry);
    // The upper bound leaves room for clocks of instances that differ by a little.
    if (expiresAt <= now() || expiresAt > now() + ttlMs + MAX_CLOCK_SKEW_MS) return undefined;
    const key = await activeKey(keyId);
    if (!key) return undefined;
    const presented = Buffer.from(match[2]!, 'base64url');
    const expected = sign(key.secretHash, payload);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return undefined;
    return {
      id: key.id,
      kind: 'read',
      workspaceId,
      rateLimit:
        key.rateLimitEventsPerSecond !== null && key.rateLimitBurst !== null
          ? { eventsPerSecond: key.rateLimitEventsPerSecond, burst: key.rateLimitBurst }
          : null,
    };
  }

  return { mint, redeem };
}
