// Where a burst's database time goes: the monitor's write call (kea_lm_write_reservations, its named statement,
// batches as the pipeline sends them) on its own, beside the parts it can be split into and the raw upsert that
// `make bench` compares the burst against. No monitor process: this is the server's share of the burst target.
// One durable throwaway cluster, every lease live in lease4; hosts is emptied and CHECKPOINTed before each variant,
// and the variants alternate within each round so the machine's drift hits all of them.
// Usage: node --import tsx bench/writer-split.ts [--leases 50000] [--batch 1000] [--rounds 3] [--only ...] [--no-write]
// Writes its section of BENCHMARKS.md (kept when make bench rewrites the rest) unless --no-write.
import { join } from 'node:path';
import type { Client } from 'pg';
import { CALL_NAME, CALL_TEXT, callValues, CallMode } from '../src/db/reservation-call';
import type { Lease } from '../src/lease';
import { migrate } from '../test/e2e/lib/monitor';
import { client, Pg, startPg } from '../test/e2e/lib/pg';
import { now, tempDir } from '../test/e2e/lib/proc';
import { benchArgs } from './lib/args';
import { runBench } from './lib/entry';
import { FLOOR_UPSERT } from './lib/floor-upsert';
import { putSection } from './lib/kept-sections';
import { nextLease, rawUpsert, Lease as BenchLease } from './lib/load';
import { machine } from './lib/report';
import { agg } from './lib/stats';

const VARIANTS = {
  function: 'the write call as shipped, leases from lease4 (each checked live there)',
  'function-memfile': 'the same call, leases from the memfile (no lease4 check)',
  classify: 'the same call in classify mode: every check and decision, no lock, no write',
  'raw-batched': "the floor's bare upsert in the same batches, rows as parameters, nothing checked",
  raw: "the raw upsert of `make bench`'s burst: one statement, rows generated in the server",
} as const;
type Variant = keyof typeof VARIANTS;
const NAMES = Object.keys(VARIANTS) as Variant[];

const args = benchArgs(
  'bench/writer-split.ts',
  "The burst's database time split: the write call, its parts, the raw upsert; its section of BENCHMARKS.md unless --no-write.",
  {
    leases: { type: 'string', count: true, help: 'leases in the burst (default 50000)' },
    batch: { type: 'string', count: true, help: 'leases per call, as --batch-size (default 1000)' },
    rounds: { type: 'string', count: true, help: 'rounds, each running every variant once (default 3)' },
    only: { type: 'string', oneOf: NAMES, help: 'variants to run (default all)' },
    'no-write': { type: 'boolean', help: 'print only; leave BENCHMARKS.md alone' },
  },
);
const LEASES = Number(args.leases ?? '50000');
const BATCH = Number(args.batch ?? '1000');
const ROUNDS = Number(args.rounds ?? '3');
const ONLY = args.only ? NAMES.filter((n) => args.only!.split(',').includes(n)) : NAMES;

/** The burst's leases as the monitor holds them, and in lease4 as Kea wrote them (triggers off: setup only). */
async function loadLeases(c: Client): Promise<{ bench: BenchLease[]; monitor: Lease[] }> {
  const bench = Array.from({ length: LEASES }, () => nextLease());
  const monitor = bench.map<Lease>((l) => ({
    address: l.addr,
    hwaddr: Buffer.from(l.mac.replace(/:/g, ''), 'hex'),
    subnetId: 1,
    hostname: l.hostname,
    source: 'database',
  }));
  await c.query('SET session_replication_role = replica');
  await c.query(
    `INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state, user_context)
     SELECT a, decode(m, 'hex'), NULL, 3600, now() + interval '3600 seconds', 1, false, false, h, 0, NULL
       FROM unnest($1::bigint[], $2::text[], $3::text[]) AS t(a, m, h)`,
    [monitor.map((l) => l.address), monitor.map((l) => l.hwaddr.toString('hex')), monitor.map((l) => l.hostname)],
  );
  await c.query('RESET session_replication_role');
  await c.query('ANALYZE lease4');
  return { bench, monitor };
}

async function callBatches(c: Client, leases: Lease[], mode: CallMode): Promise<void> {
  for (let i = 0; i < leases.length; i += BATCH) {
    const batch = leases.slice(i, i + BATCH).map((lease, idx) => ({ lease, idx }));
    // durable: false, as database mode commits its own transactions.
    await c.query({ text: CALL_TEXT, name: CALL_NAME, values: callValues(batch, { mode, maxPerSubnet: null, durable: false }) });
  }
}

async function rawBatches(c: Client, leases: Lease[]): Promise<void> {
  for (let i = 0; i < leases.length; i += BATCH) {
    const part = leases.slice(i, i + BATCH);
    await c.query('BEGIN');
    await c.query('SET LOCAL synchronous_commit = off');
    await c.query(FLOOR_UPSERT, [
      part.map((l) => l.hwaddr.toString('hex')),
      part.map((l) => l.subnetId),
      part.map((l) => l.address),
      part.map((l) => l.hostname),
      '{}',
    ]);
    await c.query('COMMIT');
  }
}

/** Seconds for the whole burst, from the first call's start to the last commit, into an emptied hosts. */
async function runVariant(pg: Pg, c: Client, v: Variant, leases: { bench: BenchLease[]; monitor: Lease[] }): Promise<number> {
  await c.query('TRUNCATE hosts CASCADE');
  await c.query('CHECKPOINT');
  if (v === 'raw') return (await rawUpsert(pg, leases.bench)).ms / 1000;
  const t0 = now();
  if (v === 'raw-batched') await rawBatches(c, leases.monitor);
  else if (v === 'function-memfile')
    await callBatches(
      c,
      leases.monitor.map((l) => ({ ...l, source: 'memfile' as const })),
      'upsert',
    );
  else await callBatches(c, leases.monitor, v === 'classify' ? 'classify' : 'upsert');
  const seconds = (now() - t0) / 1000;
  if (v !== 'classify') {
    const n = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM hosts')).rows[0].n);
    if (n !== LEASES) throw new Error(`${v}: ${n} reservations written, expected ${LEASES}`);
  }
  return seconds;
}

async function main(): Promise<number> {
  const started = new Date();
  const pg = await startPg(join(tempDir('lmk-split-'), 'pg'), { durable: true });
  await migrate(pg, true);
  const c = client(pg, 'bench-writer-split');
  await c.connect();
  const leases = await loadLeases(c);
  const seconds = new Map<Variant, number[]>(ONLY.map((v) => [v, []]));
  for (let r = 0; r < ROUNDS; r++) {
    // Each round starts one variant later, so no variant always runs first after the setup.
    const order = ONLY.map((_, i) => ONLY[(i + r) % ONLY.length]);
    for (const v of order) {
      const s = await runVariant(pg, c, v, leases);
      seconds.get(v)!.push(s);
      process.stdout.write(`  round ${r + 1}: ${v.padEnd(16)} ${s.toFixed(2)} s\n`);
    }
  }
  await c.end();

  const raw = seconds.has('raw') ? agg(seconds.get('raw')!).median : null;
  const md = [
    "## Where a burst's database time goes (bench/writer-split.ts)",
    '',
    ...machine(),
    `- Date: ${started.toISOString()}; ${LEASES.toLocaleString('en-US')} live leases, batches of ${BATCH.toLocaleString('en-US')}, ` +
      `${ROUNDS} rounds, the variants alternating; one connection, no monitor process`,
    '',
    '| variant | what it runs | seconds, median (min-max) | leases/s | rate / raw upsert |',
    '|---|---|---:|---:|---:|',
    ...ONLY.map((v) => {
      const a = agg(seconds.get(v)!);
      const share = raw === null ? '' : `${((raw / a.median) * 100).toFixed(0)}%`;
      return `| ${v} | ${VARIANTS[v]} | ${a.median.toFixed(2)} (${a.min.toFixed(2)}-${a.max.toFixed(2)}) | ${Math.round(LEASES / a.median).toLocaleString('en-US')} | ${share} |`;
    }),
  ].join('\n');
  process.stdout.write(`\n${md}\n`);
  if (!args['no-write']) putSection('bench/writer-split.ts', md);
  return 0;
}

runBench('bench/writer-split.ts', main);
