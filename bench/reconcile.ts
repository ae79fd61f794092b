// The cost of one reconciliation pass in database mode over 50,000 live leases, 20,000 of which the
// selection policy leaves out (--deny-mac-prefix), for two builds of the monitor side by side
// (the one to compare against is given with --before), alternating, in the same run. Beside them, the
// floor: the same keyset-paged reconcile query run by a bare client, nothing queued or written.
// Usage (after make build): node --import tsx bench/reconcile.ts --before OTHER_BIN [--runs 3] [--passes 5] [--no-write]
// Writes its section of BENCHMARKS.md (kept when make bench rewrites the rest) unless --no-write.
import { join } from 'node:path';
import { Client } from 'pg';
import { migrate, MONITOR_BIN, startProcess, LISTENING } from '../test/e2e/lib/monitor';
import { client, Pg, pgEnv, query, startPg } from '../test/e2e/lib/pg';
import { tempDir, waitFor } from '../test/e2e/lib/proc';
import { benchArgs } from './lib/args';
import { runBench } from './lib/entry';
import { putSection } from './lib/kept-sections';
import { machine } from './lib/report';
import { agg, cpuSeconds } from './lib/stats';

const args = benchArgs(
  'bench/reconcile.ts',
  'One reconcile pass, this build against --before, alternating; its section of BENCHMARKS.md unless --no-write.',
  {
    before: { type: 'string', help: 'the other build of the monitor to compare against' },
    runs: { type: 'string', count: true, help: 'alternating runs (default 3)' },
    passes: { type: 'string', count: true, help: 'passes timed per run (default 5)' },
    'no-write': { type: 'boolean', help: 'print only; leave BENCHMARKS.md alone' },
  },
);
const BEFORE = args.before ?? '';
const RUNS = Number(args.runs ?? '3');
const PASSES = Number(args.passes ?? '5');
const SELECTED = 30_000;
const DENIED = 20_000;
const PORT = 9467;
const ADDR = 0x0a640000; // 10.100.0.0

async function loadLeases(pg: Pg): Promise<void> {
  // 02:aa:... selected, 02:bb:... denied by --deny-mac-prefix 02:bb; one subnet, all live for an hour.
  await query(
    pg,
    `INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state, user_context)
     SELECT $1::bigint + g, decode(CASE WHEN g < $2 THEN '02aa' ELSE '02bb' END || lpad(to_hex(g), 8, '0'), 'hex'), NULL,
            3600, now() + interval '3600 seconds', 1, false, false, 'r-' || g, 0, NULL
       FROM generate_series(0, $3::int - 1) g`,
    [ADDR, SELECTED, SELECTED + DENIED],
  );
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${PORT}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

interface Pass {
  seconds: number;
  cpu: number;
  batches: number;
}

/** PASSES reconcile passes of one build, after its first catch-up reserved the selected leases. */
async function measure(bin: string, pg: Pg, dir: string): Promise<Pass[]> {
  await query(pg, 'DELETE FROM hosts');
  // An earlier build refuses a database whose recorded migrations are newer than its own; with no
  // version recorded, every build only warns. The write function installed here is the newest, and its
  // result has every column an earlier build reads.
  await query(pg, 'DELETE FROM kea_lm_schema');
  const m = startProcess(
    bin,
    [
      'run',
      '--use-database-events',
      '--subnet-id',
      '1',
      '--deny-mac-prefix',
      '02:bb',
      '--reconcile-interval',
      '4',
      '--output-dir',
      join(dir, `out-${Math.random().toString(36).slice(2)}`),
      '--metrics-port',
      String(PORT),
      '--log-format',
      'json',
    ],
    { ...process.env, ...pgEnv(pg), NODE_OPTIONS: '' },
  );
  try {
    await m.waitLog(LISTENING, 15000);
    await waitFor(
      'the selected leases reserved',
      async () => Number((await query<{ n: string }>(pg, 'SELECT count(*) AS n FROM hosts'))[0].n) === SELECTED,
      300_000,
      250,
    );
    const passes: Pass[] = [];
    let runs = await metric('kea_lease_monitor_reconcile_runs_total');
    while (passes.length < PASSES) {
      const s0 = await metric('kea_lease_monitor_reconcile_seconds_total');
      const b0 = await metric('kea_lease_monitor_batches_total');
      const c0 = cpuSeconds(m.proc.pid as number);
      await waitFor('a reconcile pass', async () => (await metric('kea_lease_monitor_reconcile_runs_total')) > runs, 60_000, 20);
      runs = await metric('kea_lease_monitor_reconcile_runs_total');
      // The pass ends with its last write: let the writer finish the batches it queued.
      await new Promise((r) => setTimeout(r, 300));
      passes.push({
        seconds: (await metric('kea_lease_monitor_reconcile_seconds_total')) - s0,
        cpu: cpuSeconds(m.proc.pid as number) - c0,
        batches: (await metric('kea_lease_monitor_batches_total')) - b0,
      });
    }
    return passes;
  } finally {
    await m.stop();
  }
}

/** The floor: the reconcile query's pages read by a bare client (what any pass must at least do). */
async function floor(pg: Pg): Promise<number> {
  const c: Client = client(pg, 'bench-floor');
  await c.connect();
  const t0 = performance.now();
  let after = -1;
  for (;;) {
    const { rows } = await c.query<{ address: string }>(
      `SELECT l.address, l.hwaddr, l.subnet_id, l.hostname, l.state, l.valid_lifetime, floor(extract(epoch FROM l.expire))::bigint AS expire,
              EXISTS (SELECT 1 FROM hosts h WHERE h.dhcp_identifier = l.hwaddr AND h.dhcp_identifier_type + 0 = 0
                         AND h.dhcp4_subnet_id = l.subnet_id AND h.ipv4_address = l.address) AS reserved
         FROM lease4 l WHERE l.address > $1 AND l.state = 0 AND l.expire > now() AND l.valid_lifetime > 0
          AND l.subnet_id = ANY ($2::bigint[]) ORDER BY l.address LIMIT 5000`,
      [after, [1]],
    );
    if (rows.length === 0) break;
    after = Number(rows[rows.length - 1].address);
    if (rows.length < 5000) break;
  }
  const s = (performance.now() - t0) / 1000;
  await c.end();
  return s;
}

async function main(): Promise<number> {
  if (!BEFORE) {
    process.stderr.write('bench/reconcile.ts: give --before BIN (a build to compare against)\n');
    return 2;
  }
  const started = new Date();
  const dir = tempDir('lmk-bench-rec-');
  const pg = await startPg(join(dir, 'pg'));
  await migrate(pg, true);
  await loadLeases(pg);
  await query(pg, 'ANALYZE');
  const builds: Array<[string, string]> = [
    ['before', BEFORE],
    ['after', MONITOR_BIN],
  ];
  const got = new Map<string, Pass[]>(builds.map(([n]) => [n, []]));
  const floors: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    for (const [name, bin] of r % 2 === 0 ? builds : [...builds].reverse()) got.get(name)?.push(...(await measure(bin, pg, dir)));
    for (let i = 0; i < 3; i++) floors.push(await floor(pg));
  }
  const f = agg(floors);
  const lines = [
    `## One reconcile pass, ${SELECTED + DENIED} live leases, ${DENIED} not selected (\`bench/reconcile.ts\`)`,
    '',
    ...machine(),
    `- Date: ${started.toISOString()}; ${RUNS} runs x ${PASSES} passes per build, the builds alternating`,
    '',
    "The floor is the reconcile query's keyset pages read by a bare client, nothing queued or written.",
    '',
    '| build | pass, median (ms) | x the floor | monitor CPU per pass (ms) | writer batches per pass |',
    '|---|---:|---:|---:|---:|',
    `| floor | ${(f.median * 1000).toFixed(0)} | 1.0 | | |`,
  ];
  for (const [name, bin] of builds) {
    const ps = got.get(name) ?? [];
    const sec = agg(ps.map((p) => p.seconds)).median;
    const cpu = agg(ps.map((p) => p.cpu)).median;
    const b = agg(ps.map((p) => p.batches)).median;
    lines.push(
      `| ${name} (\`${bin}\`) | ${(sec * 1000).toFixed(0)} | ${(sec / f.median).toFixed(1)} | ${(cpu * 1000).toFixed(0)} | ${b} |`,
    );
  }
  const md = lines.join('\n');
  process.stdout.write(`${md}\n`);
  if (!args['no-write']) putSection('bench/reconcile.ts', md);
  return 0;
}

runBench('bench/reconcile.ts', main);
