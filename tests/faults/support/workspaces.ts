import { randomUUID } from 'node:crypto';

/** A new workspace created through the service's /api with an unbound admin key; its id. Events must name an existing one. */
export async function createWorkspaceOver(url: string, adminKey: string): Promise<string> {
  const response = await fetch(`${url}/api/admin/workspaces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
    body: JSON.stringify({ name: `Fault test ${randomUUID()}` }),
  });
  if (response.status !== 200) throw new Error(`creating a workspace answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}
