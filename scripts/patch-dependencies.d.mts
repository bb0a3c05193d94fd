// Types of scripts/patch-dependencies.mjs, which stays plain JavaScript so it runs at install time
// without dev dependencies.
export interface DependencyPatch {
  name: string;
  packageName: string;
  /** The exact installed version the patch was written for; any other is left alone. */
  version: string;
  /** Files under the package's directory, each holding `original` exactly once. */
  files: string[];
  original: string;
  patched: string;
}

export interface PatchOutcome {
  patch: string;
  file: string | undefined;
  outcome: 'patched' | 'already-patched' | 'skipped';
  reason?: string;
}

export const TRPC_OBJECT_SPREAD_ORIGINAL: string;
export const TRPC_OBJECT_SPREAD_PATCHED: string;
export const POSTGRES_COPY_ERROR_ORIGINAL: string;
export const POSTGRES_COPY_ERROR_PATCHED: string;
export const PATCHES: DependencyPatch[];
export function patchDependencies(options?: { root?: string; patches?: DependencyPatch[]; warn?: (message: string) => void }): PatchOutcome[];
