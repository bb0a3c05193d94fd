import { randomUUID } from 'node:crypto';
import { asc, eq, sql } from 'drizzle-orm';
import type { Database } from '../../../db/database.ts';
import { isForeignKeyViolation, isUniqueViolation } from '../../../db/errors.ts';
import { workspaces } from '../../../db/schema.ts';
import { DomainError } from '../../errors.ts';
import { isUuid } from '../../uuid.ts';
import type { AdminScope } from '../keys/keys.ts';
import { MAX_LISTED_WORKSPACES, type CreateWorkspaceInput, type RenameWorkspaceInput, type Workspace, type WorkspaceList } from './schemas.ts';

export type WorkspaceService = ReturnType<typeof createWorkspaceService>;

export interface WorkspaceServiceOptions {
  db: Database;
  /** How many workspace ids ingestion remembers as existing before it starts over. */
  maxCachedIds?: number;
}

export const workspaceNotFound = (cause?: unknown) =>
  new DomainError('not_found', 'No workspace with this id', { path: 'workspaceId', reason: 'unknown_workspace', ...(cause !== undefined && { cause }) });

/**
 * Runs a write whose foreign key to telemetry.workspaces is its existence check (no read before
 * it): a workspace that does not exist becomes a 404 on workspaceId.
 */
export async function inExistingWorkspace<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isForeignKeyViolation(error)) throw workspaceNotFound(error);
    throw error;
  }
}
const nameTaken = (name: string) =>
  new DomainError('conflict', `A workspace named "${name}" already exists (names are unique whatever their case)`, { path: 'name', reason: 'name_taken' });
const onlyUnbound = () => new DomainError('forbidden', 'Only an admin key not bound to a workspace may create workspaces');
const outOfScope = () => new DomainError('forbidden', 'This admin key manages only its own workspace');

/**
 * Workspaces: what keys are created in and events belong to. Every verb taking an `AdminScope`
 * enforces it itself: an unbound admin (null) manages every workspace, a bound one only its own.
 */
export function createWorkspaceService({ db, maxCachedIds = 10_000 }: WorkspaceServiceOptions) {
  const columns = { id: workspaces.id, name: workspaces.name, createdAt: workspaces.createdAt };
  // Workspaces are never deleted, so an id seen once stays valid: ingestion asks the database only
  // about ids it has not seen yet. Unknown ids are not remembered: one created on another instance
  // is accepted at once.
  const knownIds = new Set<string>();
  const remember = (id: string) => {
    if (knownIds.size >= maxCachedIds) knownIds.clear();
    knownIds.add(id);
  };

  async function createWorkspace(input: CreateWorkspaceInput, scope: AdminScope = null): Promise<Workspace> {
    if (scope) throw onlyUnbound();
    try {
      const [row] = await db.orm.insert(workspaces).values({ id: randomUUID(), name: input.name }).returning(columns);
      if (!row) throw new Error('insert into workspaces answered no row');
      remember(row.id);
      return row;
    } catch (error) {
      if (isUniqueViolation(error)) throw nameTaken(input.name);
      throw error;
    }
  }

  /** The workspaces `scope` manages, by name (whatever its case), at most MAX_LISTED_WORKSPACES of them. */
  async function listWorkspaces(scope: AdminScope): Promise<WorkspaceList> {
    const rows = await db.orm
      .select(columns)
      .from(workspaces)
      .where(scope ? eq(workspaces.id, scope) : undefined)
      .orderBy(sql`lower(${workspaces.name})`, asc(workspaces.id))
      .limit(MAX_LISTED_WORKSPACES + 1);
    return { workspaces: rows.slice(0, MAX_LISTED_WORKSPACES), truncated: rows.length > MAX_LISTED_WORKSPACES };
  }

  async function renameWorkspace(input: RenameWorkspaceInput, scope: AdminScope): Promise<Workspace> {
    if (scope && input.id !== scope) throw outOfScope();
    try {
      const [row] = await db.orm.update(workspaces).set({ name: input.name }).where(eq(workspaces.id, input.id)).returning(columns);
      if (!row) throw new DomainError('not_found', 'No workspace with this id', { path: 'id' });
      return row;
    } catch (error) {
      if (isUniqueViolation(error)) throw nameTaken(input.name);
      throw error;
    }
  }

  /** The workspace `id`; 404 when there is none. */
  async function getWorkspace(id: string): Promise<Workspace> {
    const [row] = await db.orm.select(columns).from(workspaces).where(eq(workspaces.id, id)).limit(1);
    if (!row) throw workspaceNotFound();
    remember(row.id);
    return row;
  }

  /**
   * Which of `ids` name existing workspaces. Ids seen before are answered from memory; the others
   * are looked up together, in one query, however many there are.
   */
  async function existingWorkspaceIds(ids: Iterable<string>): Promise<Set<string>> {
    const existing = new Set<string>();
    const misses: string[] = [];
    for (const id of new Set(ids)) {
      // The database answers ids in lower case; a client may send them in upper case.
      if (knownIds.has(id.toLowerCase())) existing.add(id);
      else if (isUuid(id)) misses.push(id);
    }
    if (misses.length === 0) return existing;
    // The ids are checked UUIDs above, so the array literal needs no quoting.
    const rows = await db.rows<{ id: string }>(sql`select id from telemetry.workspaces where id = any(${`{${misses.join(',')}}`}::uuid[])`);
    const found = new Set(rows.map(({ id }) => id));
    for (const id of found) remember(id);
    for (const id of misses) if (found.has(id.toLowerCase())) existing.add(id);
    return existing;
  }

  return { createWorkspace, listWorkspaces, renameWorkspace, getWorkspace, existingWorkspaceIds };
}
