import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { and, asc, eq, inArray, isNull } from 'drizzle-orm';
import type { Database } from '../../../db/database.ts';
import { isUniqueViolation } from '../../../db/errors.ts';
import { apiKeys } from '../../../db/schema.ts';
import { DomainError } from '../../errors.ts';
import type { WorkspaceLimitService } from '../limits/workspace-limits.ts';
import { inExistingWorkspace } from '../workspaces/workspaces.ts';
import type { CreatedKey, CreateKeyInput, KeyKind, KeySummary, RateLimitPolicy } from './schemas.ts';

/** Who is calling: the key's identity and bindings, never its secret. */
export interface ApiKeyIdentity {
  id: string;
  kind: KeyKind;
  workspaceId: string | null;
  rateLimit: RateLimitPolicy | null;
}

const KEY_PREFIX = 'tlm';
const DISPLAY_PREFIX_LENGTH = 16;

/** `tlm_ingest_<43 base64url chars>`: 256 random bits behind a prefix that says what the key is. */
export function generateKeySecret(kind: KeyKind): string {
  return `${KEY_PREFIX}_${kind}_${randomBytes(32).toString('base64url')}`;
}

export function hashKeySecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Reads the key out of an `Authorization: Bearer <key>` header value. */
export function bearerToken(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

export type KeyService = ReturnType<typeof createKeyService>;

/**
 * What an admin key may manage: the workspace it is bound to, or null for an unbound admin key (and
 * for the service itself: start-up, tests). Every admin verb takes it and enforces it itself.
 */
export type AdminScope = string | null;

const outOfScope = () => new DomainError('forbidden', 'This admin key manages only its own workspace');

/** NOTIFY channel carrying the id of a revoked key to every instance, so caches drop it at once. */
export const KEY_REVOKED_CHANNEL = 'telemetry_key_revoked';

export interface KeyServiceOptions {
  db: Database;
  /**
   * How long a verified key is trusted without asking the database again. Revocations reach every
   * instance at once through NOTIFY; the expiry is the safety net if a notification is lost.
   */
  cacheTtlMs?: number;
  now?: () => number;
  /** Called with the id of every key revoked (or rotated away) here or, once followed, on any instance. */
  onRevoked?: (keyId: string) => void;
  /** Workspace ceilings, which bound the rate limit a workspace-bound admin may give a key. */
  ceilings?: Pick<WorkspaceLimitService, 'assertWithinCeiling'>;
}

export function createKeyService({ db, cacheTtlMs = 30_000, now = Date.now, onRevoked, ceilings }: KeyServiceOptions) {
  // Verified keys by secret hash. Unknown secrets are not cached, so a key created on another
  // instance works at once.
  const cache = new Map<string, { identity: ApiKeyIdentity; expiresAt: number }>();
  const MAX_CACHED_KEYS = 10_000;

  const forget = (keyId: string) => {
    for (const [hash, entry] of cache) if (entry.identity.id === keyId) cache.delete(hash);
    onRevoked?.(keyId);
  };
  const identityColumns = {
    id: apiKeys.id,
    kind: apiKeys.kind,
    workspaceId: apiKeys.workspaceId,
    secretHash: apiKeys.secretHash,
    rateLimitEventsPerSecond: apiKeys.rateLimitEventsPerSecond,
    rateLimitBurst: apiKeys.rateLimitBurst,
  };

  /**
   * The active key a secret belongs to, or undefined. Looked up by hash; the stored hash is then
   * compared in constant time, so the answer takes the same time whichever bytes differ.
   */
  async function authenticate(secret: string): Promise<ApiKeyIdentity | undefined> {
    if (secret.length > 512) return undefined;
    const presentedHash = hashKeySecret(secret);
    const cached = cache.get(presentedHash);
    if (cached && cached.expiresAt > now()) return cached.identity;
    // An outage thrown here is answered 503 where errors are mapped (toTRPCError), like any other.
    const identity = await lookUp(presentedHash);
    if (identity && cacheTtlMs > 0) {
      if (cache.size >= MAX_CACHED_KEYS) cache.clear();
      cache.set(presentedHash, { identity, expiresAt: now() + cacheTtlMs });
    }
    return identity;
  }

  async function lookUp(presentedHash: string): Promise<ApiKeyIdentity | undefined> {
    const [row] = await db.orm
      .select(identityColumns)
      .from(apiKeys)
      .where(and(eq(apiKeys.secretHash, presentedHash), isNull(apiKeys.revokedAt)))
      .limit(1);
    if (!row || !timingSafeEqual(Buffer.from(row.secretHash, 'hex'), Buffer.from(presentedHash, 'hex'))) return undefined;
    return {
      id: row.id,
      kind: row.kind,
      workspaceId: row.workspaceId,
      rateLimit:
        row.rateLimitEventsPerSecond !== null && row.rateLimitBurst !== null
          ? { eventsPerSecond: row.rateLimitEventsPerSecond, burst: row.rateLimitBurst }
          : null,
    };
  }

  /**
   * A new key, in an existing workspace (404 otherwise). A workspace-bound admin creates keys of its
   * own workspace only (the default there). Without a workspace, an ingest key needs the explicit
   * `allWorkspaces` choice: its events must each name an existing workspace.
   */
  async function createKey(input: CreateKeyInput & { secret?: string }, scope: AdminScope = null): Promise<CreatedKey> {
    if (scope && input.allWorkspaces) throw outOfScope();
    const workspaceId = input.workspaceId ?? scope;
    if (scope && workspaceId !== scope) throw outOfScope();
    if (!workspaceId && input.kind !== 'admin' && !(input.kind === 'ingest' && input.allWorkspaces)) {
      throw new DomainError(
        'invalid_input',
        input.kind === 'read'
          ? 'A read key must be created in a workspace'
          : 'Name the workspace the key writes to (workspaceId), or choose allWorkspaces for a key whose events each name theirs',
        { path: 'workspaceId', reason: 'workspace_required' },
      );
    }
    if (scope && input.rateLimit) {
      if (!ceilings) throw new Error('createKey for a workspace-bound admin needs the workspace ceilings');
      await ceilings.assertWithinCeiling(scope, input.kind, input.rateLimit);
    }
    const secret = input.secret ?? generateKeySecret(input.kind);
    const id = randomUUID();
    await inExistingWorkspace(() =>
      db.orm.insert(apiKeys).values({
        id,
        kind: input.kind,
        workspaceId,
        name: input.name ?? null,
        displayPrefix: secret.slice(0, DISPLAY_PREFIX_LENGTH),
        secretHash: hashKeySecret(secret),
        rateLimitEventsPerSecond: input.rateLimit?.eventsPerSecond ?? null,
        rateLimitBurst: input.rateLimit?.burst ?? null,
      }),
    );
    return { id, key: secret, kind: input.kind, workspaceId };
  }

  /** The keys `scope` manages (all of them for an unbound admin), never their secrets. */
  async function listKeys(scope: AdminScope): Promise<KeySummary[]> {
    const rows = await db.orm
      .select({
        id: apiKeys.id,
        kind: apiKeys.kind,
        workspaceId: apiKeys.workspaceId,
        name: apiKeys.name,
        displayPrefix: apiKeys.displayPrefix,
        rateLimitEventsPerSecond: apiKeys.rateLimitEventsPerSecond,
        rateLimitBurst: apiKeys.rateLimitBurst,
        createdAt: apiKeys.createdAt,
        revokedAt: apiKeys.revokedAt,
      })
      .from(apiKeys)
      .where(scope ? eq(apiKeys.workspaceId, scope) : undefined)
      .orderBy(asc(apiKeys.createdAt), asc(apiKeys.id));
    return rows.map(({ rateLimitEventsPerSecond, rateLimitBurst, ...row }) => ({
      ...row,
      rateLimit: rateLimitEventsPerSecond !== null && rateLimitBurst !== null ? { eventsPerSecond: rateLimitEventsPerSecond, burst: rateLimitBurst } : null,
    }));
  }

  /** The active key `id`, if `scope` manages it: the condition revoking and rotating act under. */
  const activeInScope = (id: string, scope: AdminScope) =>
    and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt), scope ? eq(apiKeys.workspaceId, scope) : undefined);

  /** Why revoking or rotating `id` changed no row: a key of another workspace, or no active key. */
  async function refusal(id: string, scope: AdminScope): Promise<DomainError> {
    if (scope) {
      const [row] = await db.orm.select({ workspaceId: apiKeys.workspaceId }).from(apiKeys).where(eq(apiKeys.id, id));
      if (row && row.workspaceId !== scope) return outOfScope();
    }
    return new DomainError('not_found', 'No active key with this id');
  }

  /** Every instance drops the key at once (and ends its live streams). */
  async function announceRevoked(id: string) {
    forget(id);
    await db.notify(KEY_REVOKED_CHANNEL, id);
  }

  async function revokeKey(id: string, scope: AdminScope): Promise<{ id: string; revokedAt: Date }> {
    const [row] = await db.orm
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(activeInScope(id, scope))
      .returning({ id: apiKeys.id, revokedAt: apiKeys.revokedAt });
    if (!row?.revokedAt) throw await refusal(id, scope);
    await announceRevoked(id);
    return { id: row.id, revokedAt: row.revokedAt };
  }

  /** Revokes a key and issues a new one with the same kind, workspace, name and rate limit. */
  async function rotateKey(id: string, scope: AdminScope): Promise<CreatedKey> {
    // One statement revokes the key and answers the settings its successor takes.
    const [old] = await db.orm.update(apiKeys).set({ revokedAt: new Date() }).where(activeInScope(id, scope)).returning({
      kind: apiKeys.kind,
      workspaceId: apiKeys.workspaceId,
      name: apiKeys.name,
      rateLimitEventsPerSecond: apiKeys.rateLimitEventsPerSecond,
      rateLimitBurst: apiKeys.rateLimitBurst,
    });
    if (!old) throw await refusal(id, scope);
    await announceRevoked(id);
    // The old key was in scope, so its workspace is; its rate limit was allowed when it was created.
    return createKey({
      kind: old.kind,
      ...(old.workspaceId ? { workspaceId: old.workspaceId } : { allWorkspaces: old.kind === 'ingest' }),
      ...(old.name && { name: old.name }),
      ...(old.rateLimitEventsPerSecond !== null &&
        old.rateLimitBurst !== null && { rateLimit: { eventsPerSecond: old.rateLimitEventsPerSecond, burst: old.rateLimitBurst } }),
    });
  }

  /**
   * Makes sure an admin key exists at start-up. A configured key is registered (idempotently);
   * with none configured and no admin key in the database, one is generated and returned so the
   * caller can print it once.
   */
  async function ensureAdminKey(configuredSecret: string | undefined): Promise<{ generated?: string }> {
    if (configuredSecret) {
      const existing = await authenticate(configuredSecret);
      if (!existing) {
        await createKey({ kind: 'admin', name: 'bootstrap (TELEMETRY_ADMIN_KEY)', secret: configuredSecret }).catch((error: unknown) => {
          // Another instance registered it at the same moment.
          if (!isUniqueViolation(error)) throw error;
        });
      }
      return {};
    }
    const [anyAdmin] = await db.orm
      .select({ id: apiKeys.id })
      .from(apiKeys)
      .where(and(eq(apiKeys.kind, 'admin'), isNull(apiKeys.revokedAt)))
      .limit(1);
    if (anyAdmin) return {};
    const created = await createKey({ kind: 'admin', name: 'bootstrap (generated)' });
    return { generated: created.key };
  }

  /** Drops keys revoked on any instance from this instance's cache; resolves to an unsubscribe. */
  function followRevocations(): Promise<() => Promise<void>> {
    return db.listen(KEY_REVOKED_CHANNEL, forget);
  }

  /** Which of these key ids are still active (not revoked): the safety net behind revocation notices. */
  async function activeKeyIds(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await db.orm
      .select({ id: apiKeys.id })
      .from(apiKeys)
      .where(and(inArray(apiKeys.id, [...ids]), isNull(apiKeys.revokedAt)));
    return new Set(rows.map((row) => row.id));
  }

  return { authenticate, createKey, listKeys, revokeKey, rotateKey, ensureAdminKey, followRevocations, activeKeyIds };
}
