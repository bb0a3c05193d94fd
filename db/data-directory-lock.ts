import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * PGlite runs PostgreSQL inside one process, with nothing like a postmaster to keep a second
 * process out of its data directory: two processes opening it at once (a second `npm start`, an
 * operator command while the service runs) would each write the same files. The directory is
 * locked by a file beside it (`<dir>.lock`, holding the owner's process id) for as long as the
 * database is open; a lock left by a process that no longer runs is taken over.
 */
export class DataDirectoryInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly ownerPid: number,
  ) {
    super(
      `The embedded database at ${dataDir} is in use by process ${ownerPid} (a running service or operator command): stop it, or point PGLITE_DIR (or DATABASE_URL) elsewhere`,
    );
    this.name = 'DataDirectoryInUseError';
  }
}

/** Locks this process holds now. */
const heldHere = new Set<string>();

/** Takes the lock of `dataDir`, or throws DataDirectoryInUseError; answers the function that releases it. */
export function lockDataDirectory(dataDir: string): () => void {
  const directory = resolve(dataDir);
  const lockPath = `${directory}.lock`;
  mkdirSync(dirname(lockPath), { recursive: true });
  for (let attempt = 0; ; attempt += 1) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldHere.add(lockPath);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      const owner = lockOwner(lockPath);
      // This process's own id in a lock it does not hold: left by an earlier process that had the
      // same id (a container's service often runs as the same pid after every restart).
      const heldElsewhere = owner === process.pid ? heldHere.has(lockPath) : owner !== undefined && isRunning(owner);
      if (owner !== undefined && heldElsewhere) throw new DataDirectoryInUseError(directory, owner);
      // Left by a process that ended without releasing it (a crash, kill -9): take it over.
      rmSync(lockPath, { force: true });
    }
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    heldHere.delete(lockPath);
    if (lockOwner(lockPath) === process.pid) rmSync(lockPath, { force: true });
  };
}

function lockOwner(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(lockPath, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True while a process with this id runs. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
