import type { EventInput } from './index.ts';
import { uuidv7 } from './uuid7.ts';

/** One event waiting to be sent: complete (id, source, createdAt set), as it will be sent. */
export interface QueuedEvent {
  event: EventInput;
}

/** Keeps the tracker's queue across reloads. */
export interface QueueStorage {
  load(): QueuedEvent[];
  save(queue: readonly QueuedEvent[]): void;
}

interface StoredQueue {
  updatedAt: number;
  events: readonly QueuedEvent[];
}

const PREFIX = 'telemetry-tracker:queue:';
const TAB_KEY = 'telemetry-tracker:tab';
const ALIVE_PREFIX = 'telemetry-tracker:alive:';
/** Browsers run timers of hidden tabs as rarely as once a minute: a live page may be this quiet. */
const ALIVE_WINDOW_MS = 120_000;
/** A queue not written for this long belongs to a closed tab; the next tab to start adopts it. */
const ABANDONED_AFTER_MS = 30_000;
/** Open tabs touch their queue this often, so other tabs never adopt it. */
const HEARTBEAT_MS = 10_000;

/**
 * The queue in `localStorage`, one entry per tab: a tab's id lives in `sessionStorage`, which
 * survives its reloads, so a reloaded page finds its own queue. Entries of tabs closed with events
 * still waiting are adopted by the next tab that starts; the service drops any event that was in
 * fact delivered (same id), so adoption never duplicates. Absent outside browsers (undefined).
 */
export function createBrowserQueueStorage(options: { onError?: (message: string) => void } = {}): QueueStorage | undefined {
  const local = storageOrUndefined('localStorage');
  if (!local) return undefined;
  const session = storageOrUndefined('sessionStorage');
  // One per page: a tracker created again (after shutdown) must find this page's queue, not take
  // a new tab id because its own page looks "alive".
  const existing = session ? pageStorages.get(session) : undefined;
  if (existing) return existing;
  let tabId = session?.getItem(TAB_KEY) ?? undefined;
  // "Duplicate tab" copies sessionStorage, id included: if a page with this id is still alive, this
  // is another tab and takes an id of its own (two tabs writing one queue would lose events).
  if (tabId && isAlive(local, tabId)) tabId = undefined;
  if (!tabId) {
    tabId = uuidv7();
    session?.setItem(TAB_KEY, tabId);
  }
  const ownKey = PREFIX + tabId;
  const aliveKey = ALIVE_PREFIX + tabId;
  const markAlive = () => {
    try {
      local.setItem(aliveKey, String(Date.now()));
    } catch {
      // Storage full: the queue write reports it.
    }
  };
  markAlive();
  // A page that unloads cleanly (including a reload) is no longer alive: its reload keeps the id.
  globalThis.addEventListener?.('pagehide', () => local.removeItem(aliveKey));
  let latest: readonly QueuedEvent[] = [];
  let warned = false;

  function write(queue: readonly QueuedEvent[]) {
    latest = queue;
    try {
      if (queue.length === 0) local!.removeItem(ownKey);
      else local!.setItem(ownKey, JSON.stringify({ updatedAt: Date.now(), events: queue } satisfies StoredQueue));
    } catch (error) {
      if (!warned) options.onError?.(error instanceof Error ? error.message : String(error));
      warned = true;
    }
  }

  const heartbeat = setInterval(() => {
    markAlive();
    if (latest.length > 0) write(latest);
  }, HEARTBEAT_MS);
  (heartbeat as { unref?: () => void }).unref?.();

  const storage: QueueStorage = {
    load() {
      const events: QueuedEvent[] = [];
      const seen = new Set<string>();
      const now = Date.now();
      for (let index = local.length - 1; index >= 0; index -= 1) {
        const key = local.key(index);
        if (!key?.startsWith(PREFIX)) continue;
        const stored = parse(local.getItem(key));
        if (key !== ownKey && stored && now - stored.updatedAt < ABANDONED_AFTER_MS) continue; // another open tab's
        for (const item of stored?.events ?? []) {
          if (item.event.id && !seen.has(item.event.id)) {
            seen.add(item.event.id);
            events.push(item);
          }
        }
        if (key !== ownKey) local.removeItem(key);
      }
      // Markers of pages gone without a clean unload (crashes): nobody will remove them otherwise.
      for (let index = local.length - 1; index >= 0; index -= 1) {
        const key = local.key(index);
        if (key?.startsWith(ALIVE_PREFIX) && key !== aliveKey && !isAlive(local, key.slice(ALIVE_PREFIX.length))) local.removeItem(key);
      }
      events.sort((a, b) => String(a.event.createdAt).localeCompare(String(b.event.createdAt)));
      write(events);
      return events;
    },
    save: write,
  };
  if (session) pageStorages.set(session, storage);
  return storage;
}

const pageStorages = new WeakMap<Storage, QueueStorage>();

/** True while the page holding this tab id has touched its marker recently. */
function isAlive(local: Storage, tabId: string): boolean {
  const at = Number(local.getItem(ALIVE_PREFIX + tabId));
  return Number.isFinite(at) && at > 0 && Date.now() - at < ALIVE_WINDOW_MS;
}

function parse(text: string | null): StoredQueue | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as StoredQueue;
    return Array.isArray(value.events) && typeof value.updatedAt === 'number' ? value : undefined;
  } catch {
    return undefined;
  }
}

function storageOrUndefined(name: 'localStorage' | 'sessionStorage'): Storage | undefined {
  try {
    const storage = (globalThis as { [key: string]: unknown })[name] as Storage | undefined;
    // Reading it can throw (disabled cookies, sandboxed frames).
    storage?.getItem(TAB_KEY);
    return storage;
  } catch {
    return undefined;
  }
}
