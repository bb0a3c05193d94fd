import { byId } from './dom.ts';
import type { ViewContext } from './view-context.ts';

/** An event any ingest key of the workspace accepts, naming the workspace so an all-workspaces key works too. */
function firstEventCommand(origin: string, workspaceId: string): string {
  const body = JSON.stringify({ workspaceId, source: 'web', eventType: 'custom', name: 'hello.world' });
  return [`curl -X POST ${origin}/api/events`, `  -H "Authorization: Bearer $INGEST_KEY" -H 'Content-Type: application/json'`, `  -d '${body}'`].join(' \\\n');
}

/**
 * Shown while the workspace has never received an event: how to send the first one, with this
 * service's URL and the workspace's id filled in (the ingest key stays a placeholder: the page
 * never sees one).
 */
export function firstEventView() {
  const section = byId('first-event', HTMLElement);
  const command = byId('first-event-curl', HTMLElement);
  const workspaceOutput = byId('first-event-workspace', HTMLElement);
  const copyButton = byId('first-event-copy', HTMLButtonElement);
  let workspaceId = '';

  const render = () => {
    workspaceOutput.textContent = workspaceId || '<workspace id>';
    command.textContent = firstEventCommand(location.origin, workspaceId || '<workspace id>');
  };
  render();

  copyButton.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(command.textContent ?? '');
      copyButton.textContent = 'Copied';
    } catch {
      // No clipboard permission: select the command, ready for Ctrl+C.
      getSelection()?.selectAllChildren(command);
      copyButton.textContent = 'Selected';
    }
  });

  return {
    /** The open workspace's id, once telemetry.workspace answered it. */
    setWorkspace(id: string) {
      workspaceId = id;
      render();
    },
    /** Shows the section when the workspace holds no event at all (in any range), hides it otherwise. */
    async load({ client, scope }: ViewContext) {
      const { events } = await client.telemetry.events.list.query({ ...scope, limit: 1 });
      section.hidden = events.length > 0;
    },
    showProblem() {
      section.hidden = true;
    },
  };
}
