/**
 * Ties the tracker to the page: flush with keepalive requests when the page is hidden or goes
 * away (`pagehide`, hidden `visibilitychange`), and retry at once when the browser is back
 * online. Outside browsers it does nothing. Answers the function that detaches the listeners.
 */
export function watchPageLifecycle(options: { flushOnPageHide: boolean; onHide: () => void; onOnline: () => void }): () => void {
  const browser = typeof globalThis.addEventListener === 'function' && typeof globalThis.document !== 'undefined';
  if (!browser) return () => {};
  const { onHide, onOnline } = options;
  const onVisibilityChange = () => {
    if (globalThis.document?.visibilityState === 'hidden') onHide();
  };
  if (options.flushOnPageHide) {
    globalThis.addEventListener('pagehide', onHide);
    globalThis.document.addEventListener('visibilitychange', onVisibilityChange);
  }
  globalThis.addEventListener('online', onOnline);
  return () => {
    globalThis.removeEventListener('pagehide', onHide);
    globalThis.document.removeEventListener('visibilitychange', onVisibilityChange);
    globalThis.removeEventListener('online', onOnline);
  };
}
