import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createBrowserQueueStorage, type QueuedEvent } from '../client/queue-storage.ts';

/** The Web Storage API over a Map, as a browser gives it. */
class MemoryStorage implements Storage {
  private readonly items = new Map<string, string>();
  constructor(from?: MemoryStorage) {
    for (const [key, value] of from?.items ?? []) this.items.set(key, value);
  }
  get length() {
    return this.items.size;
  }
  key(index: number) {
    return [...this.items.keys()][index] ?? null;
  }
  getItem(key: string) {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.items.set(key, value);
  }
  removeItem(key: string) {
    this.items.delete(key);
  }
  clear() {
    this.items.clear();
  }
  keys() {
    return [...this.items.keys()];
  }
}

function queued(name: string): QueuedEvent {
  return { event: { id: randomUUID(), source: 'web', eventType: 'custom', name, createdAt: new Date().toISOString() } };
}

/** One page load: its window events and storages. */
function loadPage(local: MemoryStorage, session: MemoryStorage) {
  const window = new EventTarget();
  vi.stubGlobal('localStorage', local);
  vi.stubGlobal('sessionStorage', session);
  vi.stubGlobal('addEventListener', window.addEventListener.bind(window));
  const storage = createBrowserQueueStorage()!;
  return { storage, unload: () => window.dispatchEvent(new Event('pagehide')) };
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the browser queue storage', () => {
  it('finds its own queue again after a reload of the same tab', () => {
    const local = new MemoryStorage();
    const session = new MemoryStorage();
    const first = loadPage(local, session);
    first.storage.load();
    first.storage.save([queued('a'), queued('b')]);
    first.unload();
    const reloaded = loadPage(local, session);
    expect(reloaded.storage.load().map((item) => item.event.name)).toEqual(['a', 'b']);
  });

  it('gives a duplicated tab (sessionStorage copied) a queue of its own, so neither overwrites the other', () => {
    const local = new MemoryStorage();
    const session = new MemoryStorage();
    const original = loadPage(local, session);
    original.storage.load();
    original.storage.save([queued('original')]);
    const duplicate = loadPage(local, new MemoryStorage(session));
    expect(duplicate.storage.load()).toEqual([]); // the original is alive: its queue is not taken
    duplicate.storage.save([queued('duplicate')]);
    original.storage.save([queued('original'), queued('original-2')]);
    const queues = local.keys().filter((key) => key.startsWith('telemetry-tracker:queue:'));
    expect(queues).toHaveLength(2);
  });
});
