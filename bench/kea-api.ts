// Reservation writers side by side on one machine, one run: the SQL writer (hosts table) and the
// kea-api writer (kea-dhcp4 3.0.4's host_cmds over its control socket), both writing into the same
// Kea 3.0 schema in one PostgreSQL, in batches as the pipeline hands them over.
//   new devices: N leases never seen before  -> reservations/s, and control-socket commands per device
//   renewals:    the same N leases again      -> leases/s, and commands per renewal (should be 0)
// Usage (root, Debian forky root cached by test/lib/kea-rootfs.sh):
//   node --import tsx bench/kea-api.ts [--devices 5000] [--batch 1000] [--concurrency 1,4,16] [--host-cache]
import { join } from 'node:path';
import { Database } from '../src/db/pool';
import type { Lease } from '../src/lease';
import { createLogger } from '../src/logger';
import { Metrics } from '../src/metrics';
import type { ReservationBackend } from '../src/writers/backend';
import { KeaApiBackend } from '../src/writers/kea-api';
import { SqlBackend } from '../src/writers/sql';
import { startKea3 } from '../test/e2e/kea-api/kea3';
import { debianRoot, runInRoot } from '../test/e2e/kea-api/root';
import { createNet } from '../test/e2e/lib/netns';
import { query, startPg } from '../test/e2e/lib/pg';
import { runCleanups, tempDir } from '../test/e2e/lib/proc';
import { benchArgs } from './lib/args';

const a = benchArgs('bench/kea-api.ts', 'The SQL writer and the kea-api writer side by side: new devices and renewals.', {
  devices: { type: 'string', count: true, help: 'devices per round (default 5000)' },
  batch: { type: 'string', count: true, help: 'leases per batch, as the pipeline hands them over (default 1000)' },
  concurrency: { type: 'string', counts: true, help: "the kea-api writer's concurrent commands, a list (default 1,4,16)" },
  'host-cache': { type: 'boolean', help: "load Kea's host_cache hook too" },
});
const N = Number(a.devices ?? '5000');
const BATCH = Number(a.batch ?? '1000');

// Leases in 10.99.0.0/16 (subnet 1), distinct MACs; `round` keeps each writer's devices apart.
function leases(round: number): Lease[] {
  return Array.from({ length: N }, (_, i) => {
    const n = round * N + i;
    const mac = Buffer.from([0x02, 0xbe, round, (i >> 16) & 255, (i >> 8) & 255, i & 255]);
    return { address: (10 << 24) + (99 << 16) + 256 + n, hwaddr: mac, subnetId: 1, hostname: `bench-${n}`, source: 'memfile' as const };
  });
}

async function timed(backend: ReservationBackend, ls: Lease[]): Promise<{ s: number; outcomes: Record<string, number> }> {
  const outcomes: Record<string, number> = {};
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ls.length; i += BATCH) {
    for (const r of await backend.write(ls.slice(i, i + BATCH))) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  }
  return { s: Number(process.hrtime.bigint() - t0) / 1e9, outcomes };
}

const calls = (m: Metrics) => m.total('kea_lease_monitor_kea_api_commands_total');

async function main() {
  const root = await debianRoot('forky');
  const dir = tempDir('klm-bench-kea-api-');
  const pg = await startPg(join(dir, 'pg'), { durable: true });
  await query(pg, 'CREATE DATABASE kea3');
  const net = await createNet('kb');
  await runInRoot(root, net.srv, { [pg.host]: '/run/postgresql' }, [
    'kea-admin',
    'db-init',
    'pgsql',
    '-h',
    '/run/postgresql',
    '-P',
    String(pg.port),
    '-u',
    pg.user,
    '-p',
    'unused',
    '-n',
    'kea3',
  ]);
  const kea = await startKea3({
    root,
    dir,
    net,
    leases: 'memfile',
    hosts: 'postgresql',
    pg: { ...pg, keaDb: 'kea3' },
    hostCache: a['host-cache'] ?? false,
  });
  const log = createLogger('error', 'json');
  const rows: string[][] = [];
  const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toPrecision(2));
  process.stdout.write(
    `# kea-dhcp4 ${kea.version}, PostgreSQL 15 (durable) hosts${a['host-cache'] ? ' + host_cache' : ''}; ${N} devices, batches of ${BATCH}\n`,
  );

  const db = new Database({ host: pg.host, port: pg.port, database: 'kea3', user: pg.user }, 2, log);
  const sql = new SqlBackend(db, { needs: {}, reservationPolicy: { maxPerSubnet: null }, dryRun: false, durable: true }, log);
  await sql.preflight();
  let round = 0;
  {
    const ls = leases(round++);
    const fresh = await timed(sql, ls);
    const again = await timed(sql, ls);
    rows.push(['sql', '-', fmt(N / fresh.s), '-', fmt(N / again.s), '-', JSON.stringify(fresh.outcomes), JSON.stringify(again.outcomes)]);
  }
  await db.end();

  for (const c of (a.concurrency ?? '1,4,16').split(',').map(Number)) {
    const metrics = new Metrics();
    const api = new KeaApiBackend({ socketPath: kea.ctrlSock, concurrency: c, timeoutMs: 30000 }, log, metrics);
    await api.preflight();
    const ls = leases(round++);
    const c0 = calls(metrics);
    const fresh = await timed(api, ls);
    const c1 = calls(metrics);
    const again = await timed(api, ls);
    const c2 = calls(metrics);
    rows.push([
      'kea-api',
      String(c),
      fmt(N / fresh.s),
      fmt((c1 - c0) / N),
      fmt(N / again.s),
      String(c2 - c1),
      JSON.stringify(fresh.outcomes),
      JSON.stringify(again.outcomes),
    ]);
  }
  const head = [
    'writer',
    'concurrency',
    'new reservations/s',
    'commands/new device',
    'renewals/s',
    'commands for all renewals',
    'outcomes (new)',
    'outcomes (renewals)',
  ];
  process.stdout.write(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|\n`);
  for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);
  const hosts = await query<{ n: string }>({ ...pg, database: 'kea3' }, 'SELECT count(*)::text AS n FROM hosts');
  process.stdout.write(`hosts rows at the end: ${hosts[0].n} (expected ${round * N})\n`);
}

main().then(
  () => runCleanups().then(() => process.exit(0)),
  (e: Error) => {
    process.stderr.write(`${e.stack}\n`);
    void runCleanups().then(() => process.exit(1));
  },
);
