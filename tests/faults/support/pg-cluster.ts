import { execFile, execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { freePort } from '../../support/child-service.ts';

const run = promisify(execFile);

/** The newest installed PostgreSQL's programs (Debian keeps them out of PATH). */
function binary(name: string): string {
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
  return join('/usr/lib/postgresql', versions[0]!, 'bin', name);
}

/** Runs a PostgreSQL program as the `postgres` user when we are root (initdb refuses root). */
async function asPostgres(program: string, args: string[]): Promise<string> {
  const isRoot = process.getuid?.() === 0;
  const { stdout } = isRoot ? await run('runuser', ['-u', 'postgres', '--', binary(program), ...args]) : await run(binary(program), args);
  return stdout;
}

export interface PgCluster {
  port: number;
  /** Connection URL of database `postgres`. */
  url: string;
  dataDir: string;
  start(): Promise<void>;
  /** `fast` disconnects clients and stops cleanly; `immediate` is a crash (recovery at next start). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Stops it and deletes its files. */
  destroy(): Promise<void>;
  /** Connections other than ours, by application name, from pg_stat_activity. */
  clientConnections(): Promise<number>;
}

/**
 * A private PostgreSQL server for one fault test, on its own port and data directory, so a test
 * may stop, crash or cut it without touching the shared server other tests use.
 */
export async function createPgCluster(
  options: {
    primary?: PgCluster;
    /**
     * More server settings as `name=value`, each passed as `-c name=value` after the defaults (so
     * one may override a default, e.g. `max_connections=300`); e.g. `shared_preload_libraries=citus`.
     */
    extraSettings?: string[];
  } = {},
): Promise<PgCluster> {
  const root = mkdtempSync(join(tmpdir(), 'telemetry-pg-'));
  const dataDir = join(root, 'data');
  if (process.getuid?.() === 0) chownSync(root, uidOf('postgres'), gidOf('postgres'));
  const port = await freePort();
  if (options.primary) {
    // A hot standby streaming from the primary: base backup with -R writes its primary_conninfo.
    await asPostgres('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(options.primary.port),
      '-U',
      'postgres',
      '-D',
      dataDir,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
    ]);
  } else {
    await asPostgres('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-N']);
    appendFileSync(join(dataDir, 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 trust\n');
  }
  const settings = [
    `-p ${port}`,
    `-k ${root}`,
    '-c listen_addresses=127.0.0.1',
    // Durability is not what these tests measure; crash-safety of acknowledged writes still holds
    // for `immediate` stops because the server process, not the machine, goes down.
    '-c fsync=off',
    '-c wal_level=replica',
    '-c max_wal_senders=4',
    '-c hot_standby=on',
    '-c max_connections=100',
    // pg_ctl hands these options to a shell: quoted, a value may hold spaces or commas.
    ...(options.extraSettings ?? []).map((setting) => `-c ${shellQuoted(setting)}`),
  ].join(' ');
  const logFile = join(root, 'server.log');
  writeFileSync(logFile, '');
  if (process.getuid?.() === 0) chownSync(logFile, uidOf('postgres'), gidOf('postgres'));
  const cluster: PgCluster = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    async start() {
      await asPostgres('pg_ctl', ['-D', dataDir, '-o', settings, '-l', logFile, '-w', '-t', '60', 'start']);
    },
    async stop(mode = 'fast') {
      await asPostgres('pg_ctl', ['-D', dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
    },
    async destroy() {
      await cluster.stop('immediate').catch(() => {});
      rmSync(root, { recursive: true, force: true });
    },
    async clientConnections() {
      const sql = postgres(cluster.url, { max: 1, onnotice: () => {} });
      try {
        const [row] = await sql<{ count: number }[]>`
          select count(*)::int as count from pg_stat_activity
          where backend_type = 'client backend' and pid <> pg_backend_pid()`;
        return row?.count ?? 0;
      } finally {
        await sql.end({ timeout: 1 });
      }
    },
  };
  await cluster.start();
  return cluster;
}

function shellQuoted(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user]).toString().trim());
}
function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user]).toString().trim());
}
