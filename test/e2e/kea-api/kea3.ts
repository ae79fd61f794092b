// kea-dhcp4 from the forky root (Kea 3.0): hosts in PostgreSQL or MySQL through the host_cmds hook,
// leases in PostgreSQL or memfile, optionally host_cache. Paths inside the root are the defaults
// Kea 3.0 insists on (/run/kea, /var/lib/kea); each run binds its own directories over them.
import { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { Net } from '../lib/netns';
import { Pg } from '../lib/pg';
import { onCleanup, stopChild, waitFor } from '../lib/proc';
import { Binds, keaDir, runInRoot, spawnInRoot } from './root';

export type Answer = { result: number; text?: string; arguments?: any };

export interface Kea3Opts {
  root: string;
  dir: string;
  net: Net;
  leases: 'postgresql' | 'memfile';
  hosts: 'postgresql' | 'mysql';
  /** PostgreSQL (its socket directory is bound to /run/postgresql inside the root). */
  pg?: Pg & { keaDb: string };
  hostCache?: boolean;
  hostCmds?: boolean;
}

export interface Kea3 {
  proc: ChildProcess;
  version: string;
  ctrlSock: string; // host path
  leaseFile: string; // host path (memfile)
  configFile: string; // host path
  binds: Binds;
  command(cmd: string, args?: Record<string, unknown>): Promise<Answer>;
  stop(): Promise<void>;
}

export function keaCommand(sock: string, cmd: string, args?: Record<string, unknown>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const s = createConnection(sock);
    let buf = '';
    s.on('data', (d: Buffer) => (buf += d.toString()));
    s.on('error', reject);
    s.on('end', () => {
      try {
        resolve(JSON.parse(buf));
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
    s.write(JSON.stringify(args ? { command: cmd, arguments: args } : { command: cmd }));
  });
}

export function keaConfig(o: Kea3Opts): Record<string, unknown> {
  const pgDb = (pg: Kea3Opts['pg']) => ({ type: 'postgresql', name: pg!.keaDb, host: '/run/postgresql', port: pg!.port, user: pg!.user });
  const hooks: { library: string }[] = [];
  if (o.hosts === 'postgresql' || o.leases === 'postgresql') hooks.push({ library: 'libdhcp_pgsql.so' });
  if (o.hosts === 'mysql') hooks.push({ library: 'libdhcp_mysql.so' });
  if (o.hostCache) hooks.push({ library: 'libdhcp_host_cache.so' });
  if (o.hostCmds !== false) hooks.push({ library: 'libdhcp_host_cmds.so' });
  hooks.push({ library: 'libdhcp_lease_cmds.so' });
  return {
    Dhcp4: {
      'interfaces-config': { interfaces: [o.net.srvIf], 'dhcp-socket-type': 'raw' },
      'lease-database':
        o.leases === 'memfile'
          ? { type: 'memfile', name: '/var/lib/kea/kea-leases4.csv', persist: true, 'lfc-interval': 3600 }
          : pgDb(o.pg),
      'hosts-database':
        o.hosts === 'mysql' ? { type: 'mysql', name: 'kea', host: '127.0.0.1', port: 3306, user: 'kea', password: 'kea-test' } : pgDb(o.pg),
      'host-reservation-identifiers': ['hw-address'],
      'valid-lifetime': 3600,
      // Kea >= 2.7.8 caches leases by default: every exchange must reach the lease store here.
      'cache-threshold': 0.0,
      'renew-timer': 900,
      'rebind-timer': 1800,
      'control-socket': { 'socket-type': 'unix', 'socket-name': '/run/kea/kea4-ctrl-socket' },
      'hooks-libraries': hooks,
      'multi-threading': { 'enable-multi-threading': false },
      subnet4: [{ id: 1, subnet: o.net.subnet, pools: [{ pool: o.net.pool }] }],
      loggers: [{ name: 'kea-dhcp4', severity: 'INFO', 'output-options': [{ output: 'stdout' }] }],
    },
  };
}

export async function startKea3(o: Kea3Opts): Promise<Kea3> {
  const run = keaDir(join(o.dir, 'run-kea'));
  const lib = keaDir(join(o.dir, 'lib-kea'));
  const binds: Binds = { [run]: '/run/kea', [lib]: '/var/lib/kea' };
  if (o.pg) binds[o.pg.host] = '/run/postgresql';
  // Kea's parser wants a real for cache-threshold; JSON.stringify writes 0.0 as 0.
  writeFileSync(
    join(lib, 'kea-dhcp4.json'),
    JSON.stringify(keaConfig(o), null, 2).replace('"cache-threshold": 0,', '"cache-threshold": 0.0,'),
  );
  const version = (await runInRoot(o.root, o.net.srv, binds, ['kea-dhcp4', '-v'])).stdout.trim();
  const log = join(o.dir, 'kea-dhcp4.log');
  const proc = spawnInRoot(o.root, o.net.srv, binds, ['kea-dhcp4', '-c', '/var/lib/kea/kea-dhcp4.json'], log);
  const undo = onCleanup('kea-dhcp4 3.0', () => stopChild(proc));
  const ctrlSock = join(run, 'kea4-ctrl-socket');
  const command = (cmd: string, args?: Record<string, unknown>) => keaCommand(ctrlSock, cmd, args);
  await waitFor(
    'kea-dhcp4 3.0 control socket',
    async () => {
      if (proc.exitCode !== null) throw new Error(`kea-dhcp4 exited ${proc.exitCode}: ${tail(log)}`);
      return existsSync(ctrlSock) && (await command('status-get')).result === 0;
    },
    30000,
    200,
  );
  return {
    proc,
    version,
    ctrlSock,
    binds,
    command,
    leaseFile: join(lib, 'kea-leases4.csv'),
    configFile: join(lib, 'kea-dhcp4.json'),
    async stop() {
      await stopChild(proc);
      undo();
    },
  };
}

export function tail(f: string, n = 5): string {
  try {
    return readFileSync(f, 'utf8').trim().split('\n').slice(-n).join(' | ');
  } catch {
    return '';
  }
}
