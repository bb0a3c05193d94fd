import { z } from 'zod';

/** Most workspaces one list answers; past it the answer says `truncated`. */
export const MAX_LISTED_WORKSPACES = 1000;

// Control characters and line or paragraph separators would break a name shown on one line (CLI
// tables, the dashboard's header), so names hold none.
const UNPRINTABLE = /[\p{Cc}\p{Zl}\p{Zp}]/u;

export const WorkspaceName = z
  .string()
  .trim()
  .min(1, 'A workspace name needs at least one character other than spaces')
  .max(100, 'A workspace name holds at most 100 characters')
  .refine((name) => !UNPRINTABLE.test(name), 'A workspace name may not contain control characters or line breaks')
  .describe('What people see; unique whatever its case. Spaces around it are trimmed.');
export type WorkspaceName = z.infer<typeof WorkspaceName>;

export const Workspace = z.object({
  id: z.uuid(),
  name: z.string(),
  createdAt: z.date(),
});
export type Workspace = z.infer<typeof Workspace>;

export const CreateWorkspaceInput = z.strictObject({ name: WorkspaceName });
export type CreateWorkspaceInput = z.infer<typeof CreateWorkspaceInput>;

export const RenameWorkspaceInput = z.strictObject({
  id: z.uuid().describe('The workspace to rename'),
  name: WorkspaceName,
});
export type RenameWorkspaceInput = z.infer<typeof RenameWorkspaceInput>;

export const WorkspaceList = z.object({
  workspaces: z.array(Workspace).describe('Sorted by name, whatever its case'),
  truncated: z.boolean().describe(`True when there are more than ${MAX_LISTED_WORKSPACES} workspaces and only the first are answered`),
});
export type WorkspaceList = z.infer<typeof WorkspaceList>;
