// Throwaway PostgreSQL clusters for the fault suite (scripts/pg-throwaway.sh: real Kea schema), plus the
// pg_ctl steps the faults need: stop, start again with the same options, immediate restart, other listen addresses.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pg, query, startThrowaway } from '../../e2e/lib/pg';
import { run, tempDir } from '../../e2e/lib/proc';

const PGBIN = '/usr/lib/postgresql/15/bin';
export const DB_PASSWORD = 'faults-only-password';

export interface Cluster extends Pg {
  /** Options postgres was last started with (from postmaster.opts). */
  opts(): string;
}

/** A durable cluster (fsync and synchronous_commit on) with the real Kea schema and a password for TCP. */
export async function startCluster(tag: string, opts: { durable?: boolean; port?: number } = {}): Promise<Cluster> {
  const dir = join(tempDir(`klm-faults-${tag}-`), 'pg');
  const env = { ...process.env, PG_DURABLE: opts.durable === false ? '0' : '1' };
  const pg = await startThrowaway(dir, env, opts.port ? [String(opts.port)] : []);
  await query(pg, `ALTER ROLE postgres PASSWORD '${DB_PASSWORD}'`);
  return { ...pg, opts: () => postmasterOpts(pg) };
}

function dataDir(pg: Pg): string {
  return join(pg.dir, 'data');
}

function postmasterOpts(pg: Pg): string {
  const f = join(dataDir(pg), 'postmaster.opts');
  if (!existsSync(f)) return '';
  // `/usr/lib/postgresql/15/bin/postgres "-D" "dir" "-c" "a=b" ...`: keep what follows -D dir.
  const parts =
    readFileSync(f, 'utf8')
      .trim()
      .match(/"[^"]*"|\S+/g) ?? [];
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) {
    if (parts[i] === '"-D"') {
      i++;
      continue;
    }
    out.push(parts[i]);
  }
  return out.join(' ');
}

const pgctl = (pg: Pg, args: string[], allowFail = false) =>
  run(
    'runuser',
    ['-u', 'postgres', '--', join(PGBIN, 'pg_ctl'), '-D', dataDir(pg), '-l', join(pg.dir, 'postgres.log'), '-w', '-t', '60', ...args],
    { allowFail },
  );

export async function pgStop(pg: Cluster, mode: 'fast' | 'immediate' = 'fast'): Promise<string> {
  const opts = pg.opts();
  await pgctl(pg, ['-m', mode, 'stop']);
  return opts;
}

export async function pgStart(pg: Pg, opts: string, prefix: string[] = []): Promise<void> {
  const args = [
    '-u',
    'postgres',
    '--',
    join(PGBIN, 'pg_ctl'),
    '-D',
    dataDir(pg),
    '-l',
    join(pg.dir, 'postgres.log'),
    '-w',
    '-t',
    '60',
    '-o',
    opts,
    'start',
  ];
  await run(prefix.length ? prefix[0] : 'runuser', prefix.length ? [...prefix.slice(1), 'runuser', ...args] : args);
}

export async function pgRestart(pg: Cluster, mode: 'fast' | 'immediate'): Promise<void> {
  await pgctl(pg, ['-m', mode, 'restart']);
}

/** Restart with listen_addresses replaced (and an hba line for them), optionally inside a network namespace. */
export async function relisten(pg: Cluster, addresses: string, hbaCidr: string, netns?: string, port?: number): Promise<void> {
  let opts = (await pgStop(pg)).replace(/"-c" "listen_addresses=[^"]*"/, `"-c" "listen_addresses=${addresses}"`);
  if (port) {
    opts = opts.replace(/"-c" "port=\d+"/, `"-c" "port=${port}"`);
    pg.port = port;
  }
  await run('sh', ['-c', `echo 'host all all ${hbaCidr} scram-sha-256' >> '${join(dataDir(pg), 'pg_hba.conf')}'`]);
  await pgStart(pg, opts, netns ? ['ip', 'netns', 'exec', netns] : []);
}

export async function backendPids(pg: Pg, appName: string): Promise<number[]> {
  const rows = await query<{ pid: number }>(pg, 'SELECT pid FROM pg_stat_activity WHERE application_name = $1', [appName]);
  return rows.map((r) => r.pid);
}

export async function terminate(pg: Pg, pids: number[]): Promise<number> {
  if (pids.length === 0) return 0;
  const rows = await query<{ ok: boolean }>(pg, 'SELECT pg_terminate_backend(p) AS ok FROM unnest($1::int[]) p', [pids]);
  return rows.filter((r) => r.ok).length;
}
