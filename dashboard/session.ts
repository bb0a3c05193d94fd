/**
 * The signed-in key, kept in sessionStorage: it lasts while the tab is open (reloads included) and
 * is gone when the tab closes, and other tabs or sites never see it.
 */
export interface Session {
  apiKey: string;
  /** Needed with an unbound admin key; a read key is bound to its workspace already. */
  workspaceId?: string;
}

const STORAGE_KEY = 'telemetry.dashboard.session';

export function loadSession(): Session | undefined {
  const stored = sessionStorage.getItem(STORAGE_KEY);
  if (!stored) return undefined;
  try {
    const parsed: unknown = JSON.parse(stored);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { apiKey, workspaceId } = parsed as Record<string, unknown>;
    if (typeof apiKey !== 'string' || apiKey === '') return undefined;
    return { apiKey, ...(typeof workspaceId === 'string' && workspaceId !== '' && { workspaceId }) };
  } catch {
    return undefined;
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}
