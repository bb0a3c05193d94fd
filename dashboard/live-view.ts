import type { TelemetryClient, TelemetryOutputs } from '../client/index.ts';
import { byId, element, formatCount } from './dom.ts';

type LiveEvent = TelemetryOutputs['telemetry']['live'] extends AsyncIterable<infer Envelope> ? Envelope : never;
type StoredEvent = LiveEvent extends { data: infer Event } ? Event : never;

/** Rows kept on screen; older ones drop off the bottom. */
const MAX_ROWS = 50;

type LiveState = 'connecting' | 'live' | 'paused' | 'reconnecting' | 'stopped';

/**
 * The newest committed events of the workspace, from the `telemetry.live` subscription (SSE). An
 * EventSource cannot send headers, so the client opens each connection with a short-lived stream
 * ticket in its URL, minted with the signed-in key in a header: the key never appears in a URL.
 * Pausing closes the stream; resuming reopens it from the last stream id, so the service replays
 * what was missed. A revoked key ends the stream with 401, which signs the dashboard out.
 */
export function liveView(onProblem: (error: unknown) => void) {
  const list = byId('live-list', HTMLOListElement);
  const status = byId('live-status', HTMLElement);
  const counter = byId('live-count', HTMLElement);
  const pauseButton = byId('live-pause', HTMLButtonElement);
  let received = 0;
  let lastStreamId: string | undefined;
  let subscription: { unsubscribe(): void } | undefined;
  let scope: { workspaceId?: string } = {};
  let client: TelemetryClient | undefined;

  const setState = (state: LiveState) => {
    status.dataset['state'] = state;
    status.textContent = state;
  };

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const row = (event: StoredEvent) =>
    element(
      'li',
      { 'data-event-id': event.id },
      element('time', { datetime: event.createdAt }, timeFormat.format(new Date(event.createdAt))),
      element('span', { class: 'live-name' }, event.name),
      element('span', { class: 'live-type' }, event.eventType),
      element('span', { class: 'live-source' }, event.source),
    );

  const open = () => {
    if (!client) return;
    setState('connecting');
    subscription = client.telemetry.live.subscribe(
      { ...scope, ...(lastStreamId && { lastEventId: lastStreamId }) },
      {
        onStarted: () => setState('live'),
        onData: ({ id, data: event }) => {
          lastStreamId = id;
          received += 1;
          counter.textContent = formatCount(received);
          list.prepend(row(event));
          while (list.children.length > MAX_ROWS) list.lastElementChild?.remove();
        },
        onConnectionStateChange: (state) => {
          // The client reconnects by itself (resuming from the last id); say so while it does.
          if (state.state === 'connecting' && state.error) setState('reconnecting');
          else if (state.state === 'pending') setState('live');
        },
        onError: (error) => {
          setState('stopped');
          onProblem(error);
        },
      },
    );
  };

  const close = () => {
    subscription?.unsubscribe();
    subscription = undefined;
  };

  pauseButton.addEventListener('click', () => {
    const pausing = subscription !== undefined;
    if (pausing) {
      close();
      setState('paused');
    } else open();
    pauseButton.textContent = pausing ? 'Resume' : 'Pause';
    pauseButton.setAttribute('aria-pressed', String(pausing));
  });

  return {
    start(readClient: TelemetryClient, readScope: { workspaceId?: string }) {
      close();
      client = readClient;
      scope = readScope;
      received = 0;
      lastStreamId = undefined;
      counter.textContent = '0';
      list.replaceChildren();
      pauseButton.textContent = 'Pause';
      pauseButton.setAttribute('aria-pressed', 'false');
      open();
    },
    stop() {
      close();
      client = undefined;
      setState('stopped');
    },
  };
}
