// kea-dhcp4 of a given release started inside the server namespace. Releases from a cached root
// (2.6.3, 3.0.4) run chrooted in a private mount namespace: the test directory is bind-mounted onto
// Kea's own /var/lib/kea, /var/log/kea and /run/kea (Kea >= 2.7.9 accepts nothing else), and the
// PostgreSQL socket directory onto /run/pgsock. Nothing is written into the shared cached root.
//
// Reusable: startKea({ release, net, pg, backend, hooks, hostsDatabase, binds, configure }).
import { ChildProcess, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keaRelease, KeaRelease, ReleaseInfo } from './kea-release';
import { Net } from './netns';
import { Pg } from './pg';
import { onCleanup, stopChild, waitFor } from './proc';

export interface KeaOpts {
  /** Default "2.2.0" (this machine's Kea). */
  release?: KeaRelease;
  /** Scratch directory on this machine; holds config, log, lease file and control socket. */
  dir: string;
  net: Net;
  /** Hosts database (and lease database with backend "postgresql"). */
  pg: Pg;
  /** Lease backend. */
  backend: 'postgresql' | 'memfile';
  lfcInterval?: number; // memfile only
  multiThreading?: boolean;
  severity?: 'INFO' | 'WARN' | 'DEBUG';
  /** Extra hook libraries by file name, e.g. "libdhcp_host_cmds.so", optionally with parameters. */
  hooks?: (string | { library: string; parameters?: Record<string, unknown> })[];
  /** Replaces the PostgreSQL hosts-database (e.g. a MySQL one; its socket via binds). */
  hostsDatabase?: Record<string, unknown>;
  /** More bind mounts into the root: host directory -> path inside (created on a tmpfs under /run or /mnt). */
  binds?: { host: string; inside: string }[];
  /** Last word on the Dhcp4 object before it is written. */
  configure?: (dhcp4: Record<string, unknown>) => void;
}

export type KeaAnswer = { result: number; text?: string; arguments?: Record<string, unknown> };

export interface Kea {
  release: ReleaseInfo;
  proc: ChildProcess;
  /** Paths on this machine. */
  leaseFile: string;
  logFile: string;
  ctrlSock: string;
  configFile: string;
  command(cmd: string, args?: Record<string, unknown>): Promise<KeaAnswer>;
  leases(): Promise<{ mac: string; ip: string; subnet: number; state: number }[]>;
  stop(): Promise<void>;
}

/** Paths as Kea sees them. For a chrooted release these sit under the bind mounts. */
function layout(rel: ReleaseInfo, dir: string) {
  if (!rel.root) {
    return { data: dir, log: dir, run: dir, pgHost: (pg: Pg) => pg.host };
  }
  return { data: '/var/lib/kea', log: '/var/log/kea', run: '/run/kea', pgHost: () => '/run/pgsock' };
}

export function keaConfig(o: KeaOpts, rel: ReleaseInfo): Record<string, unknown> {
  const p = layout(rel, o.dir);
  const pgDb = { type: 'postgresql', name: o.pg.database, host: p.pgHost(o.pg), port: o.pg.port, user: o.pg.user };
  const hooks: { library: string; parameters?: Record<string, unknown> }[] = [];
  const lib = (name: string) => `${rel.hooksDir}/${name}`;
  const hostsDb = o.hostsDatabase ?? pgDb;
  if (rel.backendHooks) {
    if (o.backend === 'postgresql' || hostsDb.type === 'postgresql') hooks.push({ library: lib('libdhcp_pgsql.so') });
    if (hostsDb.type === 'mysql') hooks.push({ library: lib('libdhcp_mysql.so') });
  }
  hooks.push({ library: lib('libdhcp_lease_cmds.so') });
  for (const h of o.hooks ?? []) {
    const e = typeof h === 'string' ? { library: h } : h;
    hooks.push({ ...e, library: e.library.startsWith('/') ? e.library : lib(e.library) });
  }
  const dhcp4: Record<string, unknown> = {
    'interfaces-config': { interfaces: [o.net.srvIf], 'dhcp-socket-type': 'raw' },
    'lease-database':
      o.backend === 'memfile'
        ? { type: 'memfile', name: `${p.data}/kea-leases4.csv`, persist: true, 'lfc-interval': o.lfcInterval ?? 3600 }
        : pgDb,
    'hosts-database': hostsDb,
    'host-reservation-identifiers': ['hw-address'],
    'valid-lifetime': 3600,
    'renew-timer': 900,
    'rebind-timer': 1800,
    'control-socket': { 'socket-type': 'unix', 'socket-name': `${p.run}/kea4-ctrl.sock` },
    'hooks-libraries': hooks,
    'multi-threading': { 'enable-multi-threading': o.multiThreading ?? false, 'thread-pool-size': 4, 'packet-queue-size': 256 },
    subnet4: [{ id: 1, subnet: o.net.subnet, pools: [{ pool: o.net.pool }] }],
    loggers: [{ name: 'kea-dhcp4', severity: o.severity ?? 'INFO', output_options: [{ output: `${p.log}/kea-dhcp4.log` }] }],
  };
  o.configure?.(dhcp4);
  return { Dhcp4: dhcp4 };
}

/** argv that runs kea-dhcp4 with the config at cfgInside, in the server namespace (and the root). */
function launch(o: KeaOpts, rel: ReleaseInfo, cfgInside: string): string[] {
  if (!rel.root) return ['ip', 'netns', 'exec', o.net.srv, 'kea-dhcp4', '-c', cfgInside];
  const R = rel.root;
  const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  const binds = [
    { host: o.dir, inside: '/var/lib/kea' },
    { host: o.dir, inside: '/var/log/kea' },
    { host: join(o.dir, 'run'), inside: '/run/kea' },
    { host: o.pg.host, inside: '/run/pgsock' },
    ...(o.binds ?? []),
  ];
  // /run and /mnt become private tmpfs first, so mount points can be made there without touching the root.
  const sh = [
    'set -e',
    `mount -t tmpfs -o mode=0755 tmpfs ${q(R + '/run')}`,
    `mount -t tmpfs -o mode=0755 tmpfs ${q(R + '/mnt')}`,
    ...binds.map((b) => `mkdir -p ${q(R + b.inside)} && mount --bind ${q(b.host)} ${q(R + b.inside)}`),
    `exec chroot ${q(R)} /usr/sbin/kea-dhcp4 -c ${q(cfgInside)}`,
  ].join('\n');
  return ['ip', 'netns', 'exec', o.net.srv, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', sh];
}

export async function startKea(o: KeaOpts): Promise<Kea> {
  const rel = await keaRelease(o.release ?? '2.2.0');
  const p = layout(rel, o.dir);
  // Host-side paths: everything lives in o.dir, control socket in o.dir/run for chrooted releases.
  const runDir = rel.root ? join(o.dir, 'run') : o.dir;
  if (rel.root) {
    mkdirSync(runDir, { recursive: true });
    chmodSync(runDir, 0o750); // Kea >= 2.7.9 wants its socket directory closed to others
  }
  const leaseFile = join(o.dir, 'kea-leases4.csv');
  const logFile = join(o.dir, 'kea-dhcp4.log');
  const ctrlSock = join(runDir, 'kea4-ctrl.sock');
  const configFile = join(o.dir, 'kea-dhcp4.json');
  writeFileSync(configFile, JSON.stringify(keaConfig(o, rel), null, 2));
  const out = openSync(join(o.dir, 'kea-dhcp4.stdout'), 'a');
  const [cmd, ...args] = launch(o, rel, `${p.data}/kea-dhcp4.json`);
  const proc = spawn(cmd, args, {
    env: {
      ...process.env,
      KEA_PIDFILE_DIR: p.run,
      KEA_LOCKFILE_DIR: p.run,
      ...(rel.root ? { KEA_LOG_FILE_DIR: p.log, KEA_DHCP_DATA_DIR: p.data, KEA_CONTROL_SOCKET_DIR: p.run } : {}),
    },
    stdio: ['ignore', out, out],
  });
  const undo = onCleanup(`kea-dhcp4 ${rel.release}`, () => stopChild(proc));

  function command(cmd: string, args?: Record<string, unknown>): Promise<KeaAnswer> {
    return new Promise((resolve, reject) => {
      const s = createConnection(ctrlSock);
      let buf = '';
      s.on('data', (d: Buffer) => {
        buf += d.toString();
        // Kea >= 2.7 keeps the connection open: an answer is complete once it parses.
        try {
          const v = JSON.parse(buf) as KeaAnswer;
          s.destroy();
          resolve(v);
        } catch {
          /* more to come */
        }
      });
      s.on('error', reject);
      s.on('close', () => {
        try {
          resolve(JSON.parse(buf) as KeaAnswer);
        } catch (e) {
          reject(new Error(`kea ${cmd}: no complete answer (${buf.length} bytes): ${(e as Error).message}`));
        }
      });
      s.write(JSON.stringify(args ? { command: cmd, arguments: args } : { command: cmd }));
    });
  }

  await waitFor(
    `kea-dhcp4 ${rel.release} control socket`,
    async () => {
      if (proc.exitCode !== null)
        throw new Error(`kea-dhcp4 ${rel.release} exited ${proc.exitCode}: ${tail(logFile)} ${tail(join(o.dir, 'kea-dhcp4.stdout'))}`);
      if (!existsSync(ctrlSock)) return false;
      return (await command('status-get')).result === 0;
    },
    20000,
    100,
  );

  return {
    release: rel,
    proc,
    leaseFile,
    logFile,
    ctrlSock,
    configFile,
    command,
    async leases() {
      const r = await command('lease4-get-all');
      const list = (r.arguments?.leases ?? []) as { 'hw-address': string; 'ip-address': string; 'subnet-id': number; state: number }[];
      return list.map((l) => ({ mac: l['hw-address'], ip: l['ip-address'], subnet: l['subnet-id'], state: l.state }));
    },
    async stop() {
      await stopChild(proc);
      undo();
    },
  };
}

function tail(f: string): string {
  try {
    return readFileSync(f, 'utf8').split('\n').slice(-5).join(' | ');
  } catch {
    return '';
  }
}
