// `make bench`: the benchmarks of issues 4 and 10, each repeated --runs times beside the physical limits measured
// in the same run (minimal listener, bare file creation, raw upsert), printed and written to BENCHMARKS.md.
// Usage: node --import tsx bench/run.ts [--runs 3] [--quick] [--only latency,kea,burst,baseline,cost,footprint,catchup,profile] [--no-write]
//        [--db-rates 1000,2000] [--db-fs tmpfs,disk]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cpus } from 'node:os';
import { perfdhcp } from '../test/e2e/lib/dhcp';
import { startKea } from '../test/e2e/lib/kea';
import { migrate, MONITOR_BIN } from '../test/e2e/lib/monitor';
import { createNet, netnsUnavailable } from '../test/e2e/lib/netns';
import { Pg, query, startPg } from '../test/e2e/lib/pg';
import { cleanupMark, now, runCleanups, sleep, tempDir, waitFor } from '../test/e2e/lib/proc';
import { fsLoop } from './lib/fsloop';
import { benchArgs } from './lib/args';
import { BENCHMARKS_FILE, keptSections } from './lib/kept-sections';
import { burstManyTxns, burstOneTxn, freshTables, Lease, rawUpsert, renewAll, steadyCsv, steadyDb } from './lib/load';
import { CATEGORIES, categoryOf, CpuBreakdown, readProfiles } from './lib/profile';
import { add, markdown, notes, rows, sections } from './lib/report';
import { agg, cpuSeconds, foreignCpu, percentile, rssMb, sampleRss, versionFloorMb } from './lib/stats';
import { installBaselineTrigger, Kind, PINNED_NODE, startSut } from './lib/sut';
import { mountTmpfs } from './lib/tmpfs';
import { Stamper, tailCsv, watchDiscovery } from './lib/watch';

const argv = process.argv.slice(2);
const SECTIONS = ['latency', 'kea', 'burst', 'baseline', 'cost', 'footprint', 'catchup', 'profile'] as const;
const args = benchArgs(
  'bench/run.ts',
  'The benchmarks beside their floors, written to BENCHMARKS.md unless --no-write, --db-rates or --db-fs.',
  {
    runs: { type: 'string', count: true, help: 'repetitions of each measurement (default 3; 1 with --quick)' },
    quick: { type: 'boolean', help: 'smaller loads and shorter runs' },
    only: { type: 'string', oneOf: SECTIONS, help: 'these sections only, comma-separated' },
    'no-write': { type: 'boolean', help: 'print only; leave BENCHMARKS.md alone' },
    'db-rates': { type: 'string', counts: true, help: 'database-mode latency rates, leases/s (default 1000,2000; implies --no-write)' },
    'db-fs': { type: 'string', oneOf: ['tmpfs', 'disk'], help: 'where database-mode records go (default tmpfs,disk; implies --no-write)' },
  },
);
const QUICK = args.quick ?? false;
const RUNS = Number(args.runs ?? (QUICK ? '1' : '3'));
const ONLY = (args.only ?? SECTIONS.join(',')).split(',');
const STEADY_S = QUICK ? 4 : 10;
const BURST_N = QUICK ? 10000 : 50000;
const BASE_N = QUICK ? 5000 : 20000;
const PROFILE_S = QUICK ? 4 : 10;
const PINNED_NODE_VERSION = execFileSync(PINNED_NODE, ['--version'], { encoding: 'utf8' }).trim();
const CATCHUP_N = QUICK ? 20000 : 100000;
const COST_N = QUICK ? 2000 : 10000;
const KEA_S = QUICK ? 5 : 15;
// For an A/B of one setting (--db-rates 1000 --db-fs tmpfs); a full run, which writes BENCHMARKS.md, takes all.
const DB_RATES = (args['db-rates'] ?? '1000,2000').split(',').map(Number);
const DB_FS = (args['db-fs'] ?? 'tmpfs,disk').split(',') as ('tmpfs' | 'disk')[];
const WRITE = !args['no-write'] && args['db-rates'] === undefined && args['db-fs'] === undefined;

const startupMs: number[] = [];
let unstamped = 0; // files present that the watcher never saw (inotify queue overflow): left out, counted in a note
const missingExamples: string[] = [];

function latencies(sent: Map<string, number>, done: Map<string, number>, outDir: string) {
  const xs: number[] = [];
  let missing = 0;
  for (const [mac, t0] of sent) {
    const t1 = done.get(mac);
    if (t1 !== undefined) xs.push(t1 - t0);
    else if (existsSync(join(outDir, `${mac}.json`))) unstamped++;
    else {
      missing++;
      if (missingExamples.length < 5) missingExamples.push(mac);
    }
  }
  xs.sort((a, b) => a - b);
  return {
    p50: percentile(xs, 50),
    p95: percentile(xs, 95),
    p99: percentile(xs, 99),
    max: xs[xs.length - 1] ?? NaN,
    missing,
    n: xs.length,
  };
}

async function waitFiles(w: { count(): Promise<number> }, n: number, ms: number): Promise<void> {
  await waitFor(`${n} discovery files`, async () => (await w.count()) >= n, ms, 50).catch(() => undefined);
}

const hostCount = async (pg: Pg) => Number((await query<{ n: string }>(pg, 'SELECT count(*) AS n FROM hosts'))[0].n);

interface Steady {
  l: ReturnType<typeof latencies>;
  rate: number;
  n: number;
  cpu10k: number;
  peak: number;
  steady: number;
  /** VmRSS REST_S after "Listening", before the load (NaN where not measured). */
  rest: number;
  /** RssAnon at rest and its sampled peak under load: the judged figures without the binary's file pages. */
  restAnon: number;
  peakAnon: number;
}

// The monitor's RSS at rest is read this long after "Listening" at 1,000/s, as bench/footprint.ts does.
const REST_S = 10;

/** One steady-load measurement of one system under test into a fresh output directory (removed afterwards). */
async function steadyRun(kind: Kind, pg: Pg, out: string, mode: 'db' | 'file', rate: number, stateDir: string): Promise<Steady> {
  mkdirSync(out);
  await freshTables(pg);
  const leaseFile = `${out}.csv`;
  const w = await watchDiscovery(out);
  const sut = await startSut(kind, pg, { outputDir: out, mode, leaseFile, stateFile: join(stateDir, `${basename(out)}.pos.json`) });
  if (mode === 'db' && kind === 'monitor') startupMs.push(sut.readyMs);
  let rest = NaN;
  let restAnon = NaN;
  if (mode === 'db' && kind === 'monitor' && rate === 1000) {
    await sleep(REST_S * 1000);
    ({ rss: rest, anon: restAnon } = rssMb(sut.pid));
  }
  const rss = sampleRss(sut.pid);
  const cpu0 = cpuSeconds(sut.pid);
  const s = mode === 'db' ? await steadyDb(pg, rate, STEADY_S) : await steadyCsv(leaseFile, rate, STEADY_S);
  await waitFiles(w, s.sent.size, 20000);
  const cpu = cpuSeconds(sut.pid) - cpu0;
  const mem = rss.stop();
  const l = latencies(s.sent, await w.dump(), out);
  await w.stop();
  await sut.m.stop();
  rmSync(out, { recursive: true, force: true }); // the tmpfs stays small; the disk directory starts each run empty
  rmSync(leaseFile, { force: true });
  return {
    l,
    rate: s.rate,
    n: s.sent.size,
    cpu10k: (cpu / s.sent.size) * 10000,
    peak: mem.peak,
    steady: mem.steady,
    rest,
    restAnon,
    peakAnon: mem.peakAnon,
  };
}

/** The load alone, nobody listening: Kea's achieved rate when the database is all its own. */
async function aloneRun(pg: Pg, rate: number): Promise<number> {
  await freshTables(pg);
  return (await steadyDb(pg, rate, STEADY_S)).rate;
}

/** The bare file-creation loop, watched by the same inotify stamper as the monitor's directory (same kernel work). */
async function watchedFsLoop(dir: string, n: number) {
  const w = await watchDiscovery(dir);
  try {
    return await fsLoop(dir, n);
  } finally {
    await w.stop();
  }
}

const FS_LABEL = { tmpfs: 'tmpfs', disk: 'disk (ext4)' } as const;

/**
 * 1 + 5, database mode: 1,000/s and 2,000/s, records on tmpfs and on disk. In each run the monitor and the
 * minimal listener (its physical limit) take the same load on the same kind of directory, back to back, in
 * alternating order; then a bare file-creation loop creates as many files there. RSS and CPU of the monitor.
 */
async function latencyDb(pg: Pg, dir: string, tmpfs: string | undefined) {
  const cpuG = '5. CPU and memory, db mode';
  for (const rate of DB_RATES) {
    for (const fs of DB_FS) {
      const base = fs === 'tmpfs' ? tmpfs : dir;
      if (!base) continue;
      const mon: Steady[] = [],
        lis: Steady[] = [],
        flo: Steady[] = [],
        alone: number[] = [],
        loop: number[] = [],
        floorMb: number[] = [];
      const into: Record<string, Steady[]> = { monitor: mon, listener: lis, floor: flo };
      for (let r = 0; r < RUNS; r++) {
        const kinds: Kind[] = ['monitor', 'listener', 'floor'];
        const order = kinds.slice(r % 3).concat(kinds.slice(0, r % 3));
        // Kea's own rate with nobody listening: what the monitor's commits must not take from.
        alone.push(await aloneRun(pg, rate));
        floorMb.push(versionFloorMb(MONITOR_BIN));
        process.stdout.write(`    db ${rate}/s ${fs} run ${r + 1} Kea alone: ${alone[alone.length - 1].toFixed(0)}/s\n`);
        for (const kind of order) {
          const x = await steadyRun(kind, pg, join(base, `lat-db-${rate}-${fs}-${r}-${kind}`), 'db', rate, dir);
          into[kind].push(x);
          process.stdout.write(
            `    db ${rate}/s ${fs} run ${r + 1} ${kind}: ${x.n} leases at ${x.rate.toFixed(0)}/s, p50 ${x.l.p50.toFixed(2)} p99 ${x.l.p99.toFixed(2)} max ${x.l.max.toFixed(1)} ms, ${x.l.missing} without a file, CPU ${x.cpu10k.toFixed(2)} s/10k\n`,
          );
        }
        const ld = join(base, `fsloop-${rate}-${fs}-${r}`);
        mkdirSync(ld);
        const f = await watchedFsLoop(ld, mon[mon.length - 1].n);
        rmSync(ld, { recursive: true, force: true });
        loop.push((f.cpu / mon[mon.length - 1].n) * 10000);
        process.stdout.write(
          `    bare file creation, ${mon[mon.length - 1].n} files on ${fs}: ${f.ms.toFixed(0)} ms, CPU ${f.cpu.toFixed(2)} s\n`,
        );
      }
      const g = `1. Latency, db mode, ${rate.toLocaleString('en-US')}/s, records on ${FS_LABEL[fs]}`;
      add({ group: g, metric: 'achieved insert rate, monitor runs', unit: 'leases/s', runs: mon.map((x) => x.rate) });
      add({ group: g, metric: 'achieved insert rate, minimal listener runs', unit: 'leases/s', runs: lis.map((x) => x.rate) });
      add({ group: g, metric: 'achieved insert rate, floor runs', unit: 'leases/s', runs: flo.map((x) => x.rate) });
      add({ group: g, metric: 'achieved insert rate, Kea alone (no listener)', unit: 'leases/s', runs: alone });
      const share = mon.map((x, i) => (100 * x.rate) / alone[i]);
      const keaTarget = rate === 1000 ? 95 : 90;
      add({
        group: g,
        metric: "Kea's rate beside the monitor / alone",
        unit: '%',
        runs: share,
        target: `>= ${keaTarget}%`,
        met: agg(share).median >= keaTarget,
      });
      const slow = [...mon, ...lis].filter((x) => x.rate < 0.95 * rate);
      if (slow.length)
        notes.push(
          `${g}: in ${slow.length} of ${mon.length + lis.length} runs the generator fell behind its schedule (down to ${Math.min(...slow.map((x) => x.rate)).toFixed(0)}/s): the machine was saturated, and those latencies are for the rate achieved.`,
        );
      add({ group: g, metric: 'monitor p50', unit: 'ms', runs: mon.map((x) => x.l.p50) });
      add({ group: g, metric: 'monitor p95', unit: 'ms', runs: mon.map((x) => x.l.p95) });
      const p99 = mon.map((x) => x.l.p99);
      const r99 = add({ group: g, metric: 'monitor p99', unit: 'ms', runs: p99 });
      if (fs === 'tmpfs') {
        const t = rate === 1000 ? 2 : 5;
        Object.assign(r99, { target: `<= ${t} ms in every run (max)`, met: agg(p99).max <= t });
      }
      add({ group: g, metric: 'floor p50', unit: 'ms', runs: flo.map((x) => x.l.p50) });
      add({ group: g, metric: 'floor p99', unit: 'ms', runs: flo.map((x) => x.l.p99) });
      const fr99 = mon.map((x, i) => x.l.p99 / flo[i].l.p99);
      const fp50 = mon.map((x, i) => x.l.p50 - flo[i].l.p50);
      const rf = add({ group: g, metric: 'monitor p99 / floor p99', unit: 'x', runs: fr99, note: '(each run)' });
      const pf = add({ group: g, metric: 'monitor p50 - floor p50', unit: 'ms', runs: fp50, note: '(each run)' });
      if (fs === 'tmpfs') {
        Object.assign(rf, { target: '<= 1.5x', met: agg(fr99).median <= 1.5 });
        Object.assign(pf, { target: '<= 1 ms', met: agg(fp50).median <= 1 });
      }
      add({ group: g, metric: 'minimal listener p50', unit: 'ms', runs: lis.map((x) => x.l.p50) });
      add({ group: g, metric: 'minimal listener p99', unit: 'ms', runs: lis.map((x) => x.l.p99) });
      const ratio = mon.map((x, i) => x.l.p99 / lis[i].l.p99);
      const rr = add({ group: g, metric: 'monitor p99 / minimal listener p99', unit: 'x', runs: ratio, note: '(each run)' });
      if (fs === 'disk') Object.assign(rr, { target: '<= 1.5x', met: agg(ratio).median <= 1.5 });
      add({ group: g, metric: 'leases without a discovery file after 20 s', unit: '', runs: mon.map((x) => x.l.missing) });

      const c = `${rate.toLocaleString('en-US')}/s, ${fs}`;
      add({ group: cpuG, metric: `${c}: monitor CPU per 10,000 leases`, unit: 's', runs: mon.map((x) => x.cpu10k) });
      add({ group: cpuG, metric: `${c}: bare file creation CPU per 10,000 files`, unit: 's', runs: loop });
      add({ group: cpuG, metric: `${c}: minimal listener CPU per 10,000 leases`, unit: 's', runs: lis.map((x) => x.cpu10k) });
      const beyond = mon.map((x, i) => x.cpu10k - loop[i]);
      const rb = add({ group: cpuG, metric: `${c}: monitor CPU beyond file creation, per 10,000`, unit: 's', runs: beyond });
      if (rate === 2000 || fs === 'tmpfs') Object.assign(rb, { target: '<= 0.5 s', met: agg(beyond).median <= 0.5 });
      // Issue 19's memory targets are at rest and at 1,000/s; at 2,000/s the figures are shown beside them.
      const peak = mon.map((x) => x.peak);
      if (rate === 1000) {
        const rest = mon.map((x) => x.rest);
        add({
          group: cpuG,
          metric: `${c}: monitor RSS at rest (${REST_S} s after Listening)`,
          unit: 'MB',
          runs: rest,
          target: '<= 70 MB',
          met: agg(rest).median <= 70,
        });
        add({ group: cpuG, metric: `${c}: monitor peak RSS`, unit: 'MB', runs: peak, target: '<= 90 MB', met: agg(peak).median <= 90 });
        // The same two without the binary's file-backed pages, which the kernel may drop and which moved between runs.
        add({ group: cpuG, metric: `${c}: monitor RssAnon at rest`, unit: 'MB', runs: mon.map((x) => x.restAnon) });
        add({ group: cpuG, metric: `${c}: monitor RssAnon peak (sampled)`, unit: 'MB', runs: mon.map((x) => x.peakAnon) });
        // The floor of the same binary in the same run, and what the daemon holds above it.
        add({ group: cpuG, metric: `${c}: the binary's floor (\`--version\` peak RSS)`, unit: 'MB', runs: floorMb });
        add({
          group: cpuG,
          metric: `${c}: monitor RSS at rest above the floor`,
          unit: 'MB',
          runs: rest.map((x, i) => x - floorMb[i]),
          note: '(each run)',
        });
        add({
          group: cpuG,
          metric: `${c}: monitor peak RSS above the floor`,
          unit: 'MB',
          runs: peak.map((x, i) => x - floorMb[i]),
          note: '(each run)',
        });
      } else {
        add({ group: cpuG, metric: `${c}: monitor steady RSS`, unit: 'MB', runs: mon.map((x) => x.steady) });
        add({ group: cpuG, metric: `${c}: monitor peak RSS`, unit: 'MB', runs: peak });
      }
    }
  }
}

/** 1, file mode: 500/s and 2,000/s memfile rows, records on disk. */
async function latencyFile(pg: Pg, dir: string) {
  for (const rate of [500, 2000]) {
    const xs: Steady[] = [];
    for (let r = 0; r < RUNS; r++) {
      const x = await steadyRun('monitor', pg, join(dir, `lat-file-${rate}-${r}`), 'file', rate, dir);
      xs.push(x);
      process.stdout.write(
        `    file ${rate}/s run ${r + 1}: ${x.n} leases at ${x.rate.toFixed(0)}/s, p50 ${x.l.p50.toFixed(2)} p99 ${x.l.p99.toFixed(2)} max ${x.l.max.toFixed(1)} ms, ${x.l.missing} without a file\n`,
      );
    }
    const g = `1. Latency, file mode, ${rate.toLocaleString('en-US')}/s, records on disk (ext4)`;
    add({ group: g, metric: 'achieved write rate', unit: 'leases/s', runs: xs.map((x) => x.rate) });
    add({ group: g, metric: 'p50', unit: 'ms', runs: xs.map((x) => x.l.p50) });
    add({ group: g, metric: 'p95', unit: 'ms', runs: xs.map((x) => x.l.p95) });
    const p99 = xs.map((x) => x.l.p99);
    const r99 = add({ group: g, metric: 'p99', unit: 'ms', runs: p99 });
    if (rate === 2000) Object.assign(r99, { target: '<= 10 ms', met: agg(p99).median <= 10 });
    add({ group: g, metric: 'leases without a discovery file after 20 s', unit: '', runs: xs.map((x) => x.l.missing) });
  }
}

/** 1 (real Kea): perfdhcp at ~200 new clients/s against kea-dhcp4 on PostgreSQL, then on memfile. */
async function realKea(dir: string) {
  const why = await netnsUnavailable();
  if (why) {
    notes.push(`Real-Kea latency skipped: ${why}.`);
    return;
  }
  for (const backend of ['postgresql', 'memfile'] as const) {
    const mark = cleanupMark();
    const d = join(dir, `kea-${backend}`);
    mkdirSync(d);
    const net = await createNet(backend[0]);
    const pg = await startPg(join(d, 'pg'), { durable: true });
    await migrate(pg, backend === 'postgresql');
    // Commit time of Kea's own INSERT, taken inside its transaction (so slightly early: conservative).
    await query(
      pg,
      `CREATE UNLOGGED TABLE bench_lease_ts (hwaddr bytea, ts double precision);
      CREATE FUNCTION bench_lease_ts() RETURNS trigger AS $$ BEGIN
        INSERT INTO bench_lease_ts VALUES (NEW.hwaddr, extract(epoch from clock_timestamp()) * 1000); RETURN NULL; END $$ LANGUAGE plpgsql;
      CREATE TRIGGER bench_lease_ts AFTER INSERT ON lease4 FOR EACH ROW EXECUTE FUNCTION bench_lease_ts();`,
    );
    const kea = await startKea({ dir: d, net, pg, backend, lfcInterval: 3600, severity: 'WARN' });
    const mode = backend === 'postgresql' ? 'db' : 'file';
    const p50: number[] = [],
      p95: number[] = [],
      p99: number[] = [],
      rates: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const out = join(d, `out-${r}`);
      mkdirSync(out);
      const w = await watchDiscovery(out);
      const tail = backend === 'memfile' ? await tailCsv(d, kea.leaseFile) : undefined;
      const sut = await startSut('monitor', pg, {
        outputDir: out,
        mode,
        leaseFile: kea.leaseFile,
        stateFile: join(d, 'pos.json') /* one monitor restarted between runs, as in production */,
      });
      await sleep(300);
      const t0 = now();
      const rep = await perfdhcp(net, { rate: 200, clients: 200000, seconds: KEA_S, mac: `02:5${r}:00:00:00:00` });
      const secs = (now() - t0) / 1000;
      let sent: Map<string, number>;
      if (tail) sent = await tail.dump();
      else {
        const rowsTs = await query<{ mac: string; ts: number }>(pg, "SELECT encode(hwaddr,'hex') AS mac, ts FROM bench_lease_ts");
        sent = new Map(rowsTs.map((x) => [x.mac.match(/../g)!.join('-'), Number(x.ts)]));
      }
      // Only this run's clients (the tailer also sees earlier runs' rows).
      sent = new Map([...sent].filter(([m]) => m.startsWith(`02-5${r}`)));
      await waitFiles(w, sent.size, 20000);
      const l = latencies(sent, await w.dump(), out);
      if (l.missing && backend === 'postgresql') {
        // Say what happened to them: still leased? reserved, and to which address?
        const macs = [...sent.keys()]
          .filter((m) => !existsSync(join(out, `${m}.json`)))
          .slice(0, 5)
          .map((m) => m.replace(/-/g, ''));
        const info = await query(
          pg,
          `SELECT encode(l.hwaddr,'hex') AS mac, host('0.0.0.0'::inet + l.address) AS ip, l.state, h.host_id, host('0.0.0.0'::inet + h.ipv4_address) AS reserved
          FROM unnest($1::text[]) m LEFT JOIN lease4 l ON l.hwaddr = decode(m,'hex') LEFT JOIN hosts h ON h.dhcp_identifier = decode(m,'hex')`,
          [macs],
        );
        process.stdout.write(`    missing: ${JSON.stringify(info)}\n`);
        notes.push(`Real Kea (PostgreSQL) run ${r + 1}: ${l.missing} new leases had no discovery file after 20 s: ${JSON.stringify(info)}`);
      }
      await w.stop();
      await tail?.stop();
      await sut.m.stop();
      p50.push(l.p50);
      p95.push(l.p95);
      p99.push(l.p99);
      rates.push(sent.size / secs);
      process.stdout.write(
        `    kea ${backend} run ${r + 1}: ${sent.size} new leases (${(sent.size / secs).toFixed(0)}/s), p50 ${l.p50.toFixed(1)} p99 ${l.p99.toFixed(1)} ms, ${l.missing} without a file; ${/drops: \d+/.exec(rep.report)?.[0] ?? ''}\n`,
      );
    }
    const g = `1. Latency, real Kea (${backend}) + perfdhcp, ${mode} mode`;
    add({ group: g, metric: 'new leases', unit: '/s', runs: rates });
    add({ group: g, metric: 'p50', unit: 'ms', runs: p50 });
    add({ group: g, metric: 'p95', unit: 'ms', runs: p95 });
    add({ group: g, metric: 'p99', unit: 'ms', runs: p99 });
    await kea.stop();
    await runCleanups(mark);
  }
}

async function burstRun(kind: Kind, pg: Pg, dir: string, how: 'one' | 'many', n: number, tag: string) {
  const out = join(dir, `burst-${tag}`);
  mkdirSync(out);
  await freshTables(pg);
  const w = how === 'one' ? await watchDiscovery(out) : undefined;
  const sut = await startSut(kind, pg, { outputDir: out });
  const before = await hostCount(pg);
  let t0: number, tCommit: number, leases: Lease[];
  if (how === 'one') ({ t0, tCommit, leases } = await burstOneTxn(pg, n));
  else {
    const b = await burstManyTxns(pg, n);
    t0 = b.t0;
    tCommit = b.tDone;
    leases = b.leases;
  }
  const limit = kind === 'monitor' ? 120000 : 600000;
  const [tDone, tRecords] = await Promise.all([
    waitFor('burst reserved', async () => (await hostCount(pg)) - before >= n && now(), limit, 50).catch(() => NaN),
    w ? recordsDone(w, out, n, limit) : NaN,
  ]);
  await w?.stop();
  await sut.m.stop();
  rmSync(out, { recursive: true, force: true });
  return {
    fromCommit: n / ((tDone - tCommit) / 1000),
    fromStart: n / ((tDone - t0) / 1000),
    writer: n / ((tCommit - t0) / 1000),
    total: (tDone - t0) / 1000,
    lagMs: tDone - tCommit,
    recordsMs: tRecords - tCommit,
    leases,
  };
}

/** When the n-th discovery file was renamed into out: the watcher's last stamp, or (inotify overflow) a readdir poll. */
async function recordsDone(w: Stamper, out: string, n: number, limit: number): Promise<number> {
  const end = now() + limit;
  for (let i = 1; now() < end; i++) {
    if ((await w.count()) >= n) return [...(await w.dump()).values()].reduce((a, b) => Math.max(a, b), 0);
    if (i % 20 === 0 && readdirSync(out).filter((f) => f.endsWith('.json') && !f.startsWith('.')).length >= n) return now();
    await sleep(50);
  }
  return NaN;
}

/** 2: BURST_N leases at once; beside them the file system's and the database's own limits for the same work. */
async function burst(pg: Pg, dir: string) {
  const rawPg = await startPg(join(dir, 'pg-raw'), { durable: true });
  await migrate(rawPg, false);
  const x: Record<string, number[]> = { one: [], records: [], loop: [], ratio: [], raw: [], many: [], manyWriter: [], lag: [] };
  for (let r = 0; r < RUNS; r++) {
    const b = await burstRun('monitor', pg, dir, 'one', BURST_N, `one-${r}`);
    const ld = join(dir, `fsloop-burst-${r}`);
    mkdirSync(ld);
    const f = await watchedFsLoop(ld, BURST_N);
    rmSync(ld, { recursive: true, force: true });
    const raw = await rawUpsert(rawPg, b.leases);
    x.one.push(b.fromCommit);
    x.records.push(b.recordsMs / 1000);
    x.loop.push(f.ms / 1000);
    x.ratio.push(b.recordsMs / f.ms);
    x.raw.push(raw.rate);
    process.stdout.write(
      `    burst one run ${r + 1}: reservations ${b.fromCommit.toFixed(0)}/s after the commit, records done ${(b.recordsMs / 1000).toFixed(2)} s after it; bare file creation ${(f.ms / 1000).toFixed(2)} s; raw upsert ${raw.rate.toFixed(0)}/s\n`,
    );
  }
  for (let r = 0; r < RUNS; r++) {
    const b = await burstRun('monitor', pg, dir, 'many', BURST_N, `many-${r}`);
    x.many.push(b.fromStart);
    x.manyWriter.push(b.writer);
    x.lag.push(b.lagMs);
    process.stdout.write(`    burst many run ${r + 1}: ${b.total.toFixed(2)} s total, ${b.fromStart.toFixed(0)} reservations/s\n`);
  }
  const g = `2. Burst of ${BURST_N.toLocaleString('en-US')} leases, records on disk (ext4)`;
  const one = 'one transaction';
  add({
    group: g,
    metric: `${one}: reservations committed/s after its commit`,
    unit: '/s',
    runs: x.one,
    target: '>= 25,000/s',
    met: agg(x.one).median >= 25000,
  });
  add({ group: g, metric: `${one}: raw upsert of the same rows (one INSERT ... ON CONFLICT, emptied hosts)`, unit: '/s', runs: x.raw });
  const share = x.one.map((v, i) => (100 * v) / x.raw[i]);
  add({
    group: g,
    metric: `${one}: reservations/s as a share of the raw upsert's`,
    unit: '%',
    runs: share,
    note: '(each run)',
    target: '>= 50%',
    met: agg(share).median >= 50,
  });
  add({ group: g, metric: `${one}: all discovery records renamed, after its commit`, unit: 's', runs: x.records });
  add({ group: g, metric: `${one}: bare file creation of as many files`, unit: 's', runs: x.loop });
  add({
    group: g,
    metric: `${one}: records time / bare file creation time`,
    unit: 'x',
    runs: x.ratio,
    note: '(each run)',
    target: '<= 1.2x',
    met: agg(x.ratio).median <= 1.2,
  });
  add({ group: g, metric: 'one lease per transaction: reservations/s from the first insert', unit: '/s', runs: x.many });
  add({ group: g, metric: "(one lease per transaction: the writer's own inserts/s)", unit: '/s', runs: x.manyWriter });
  add({ group: g, metric: '(one lease per transaction: last reservation after the last commit)', unit: 'ms', runs: x.lag });
}

/** 3: BASE_N leases in one transaction, the monitor and the seed BASELINE (own cluster) in turn, in each run. */
async function baseline(pg: Pg, basePg: Pg, dir: string) {
  const kinds = ['baseline-upsert', 'baseline-select-insert'] as const;
  const mon: number[] = [];
  const base: Record<string, number[]> = { 'baseline-upsert': [], 'baseline-select-insert': [] };
  for (let r = 0; r < RUNS; r++) {
    const m = await burstRun('monitor', pg, dir, 'one', BASE_N, `base-monitor-${r}`);
    mon.push(m.fromCommit);
    process.stdout.write(`    monitor run ${r + 1}: ${m.fromCommit.toFixed(0)} reservations/s\n`);
    for (const kind of kinds) {
      const b = await burstRun(kind, basePg, dir, 'one', BASE_N, `${kind}-${r}`);
      base[kind].push(b.fromCommit);
      process.stdout.write(`    ${kind} run ${r + 1}: ${b.total.toFixed(1)} s, ${b.fromCommit.toFixed(0)} reservations/s\n`);
    }
  }
  const g = `3. BASELINE (seed design) vs monitor, ${BASE_N.toLocaleString('en-US')} leases in one transaction`;
  add({ group: g, metric: 'monitor: reservations/s', unit: '/s', runs: mon });
  for (const kind of kinds) {
    add({ group: g, metric: `${kind}: reservations/s`, unit: '/s', runs: base[kind] });
    const ratio = mon.map((o, i) => o / base[kind][i]);
    const rr = add({ group: g, metric: `ratio monitor / ${kind}`, unit: 'x', runs: ratio, note: '(each run, same run)' });
    if (kind === 'baseline-upsert') Object.assign(rr, { target: '>= 8x', met: agg(ratio).median >= 8 });
  }
}

/** 4: statements and transactions per reservation (pg_stat_statements by the SUT's role, pg_stat_database deltas). */
async function cost(pg: Pg, basePg: Pg | undefined, dir: string) {
  const kinds: [Kind, Pg][] = [['monitor', pg]];
  if (basePg && ONLY.includes('baseline')) kinds.push(['baseline-select-insert', basePg], ['baseline-upsert', basePg]);
  for (const [kind, p] of kinds) {
    const role = kind === 'monitor' ? 'bench_monitor' : 'bench_baseline';
    await query(
      p,
      `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE ${role} LOGIN SUPERUSER; END IF; END $$`,
    );
    const res: Record<string, number[]> = { newStmts: [], newXacts: [], renStmts: [], renXacts: [], renWrites: [], renSeq: [] };
    // A connected backend may hold its statistics back for up to 10 s (PGSTAT_IDLE_INTERVAL); one that exits
    // flushes them. So each phase ends by stopping the SUT, and begins with a fresh one that has gone quiet.
    const snap = async () => {
      const s = (
        await query<{ calls: string; xacts: string; seq: string; xid: string }>(
          p,
          `SELECT
        (SELECT coalesce(sum(calls),0) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = $1)::text AS calls,
        (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database())::text AS xacts,
        (SELECT last_value FROM hosts_host_id_seq)::text AS seq, txid_current()::text AS xid`,
          [role],
        )
      )[0];
      return { calls: Number(s.calls), xacts: Number(s.xacts), seq: Number(s.seq), xid: Number(s.xid) };
    };
    const start = async (out: string) => {
      const sut = await startSut(kind, p, { outputDir: out, dbUser: role });
      await sleep(11000); // its start-up queries (catch-up, LISTEN) flushed and not counted
      return sut;
    };
    for (let r = 0; r < RUNS; r++) {
      const out = join(dir, `cost-${kind}-${r}`);
      mkdirSync(out);
      await freshTables(p);
      const w = await watchDiscovery(out);
      let sut = await start(out);
      const a = await snap();
      const b1 = await burstOneTxn(p, COST_N);
      await waitFiles(w, COST_N, 120000);
      await sut.m.stop();
      await sleep(300);
      const b = await snap();
      sut = await start(out);
      const b2 = await snap();
      await renewAll(p, b1.leases);
      // Let the SUT drain the renewal notifications: until its statement count stops moving for 2 s.
      let drainSnaps = 0;
      for (let last = -1, still = 0; still < 4; drainSnaps++) {
        await sleep(500);
        const n = (await snap()).calls;
        still = n === last ? still + 1 : 0;
        last = n;
      }
      await sut.m.stop();
      await sleep(300);
      const c = await snap();
      const written = Number(
        (await query<{ n: string }>(p, 'SELECT count(*)::text AS n FROM hosts WHERE xmin::text::bigint > $1', [b2.xid]))[0].n,
      );
      await w.stop();
      // Transaction deltas minus the load generator's own (1 for the burst, one per renewal) and the snapshot's.
      res.newStmts.push((b.calls - a.calls) / COST_N);
      res.newXacts.push((b.xacts - a.xacts - 2) / COST_N);
      res.renStmts.push((c.calls - b2.calls) / COST_N);
      res.renXacts.push((c.xacts - b2.xacts - COST_N - 1 - drainSnaps) / COST_N);
      res.renWrites.push(written);
      res.renSeq.push(c.seq - b2.seq);
      process.stdout.write(
        `    ${kind} run ${r + 1}: new ${b.calls - a.calls} stmts, renewals ${c.calls - b2.calls} stmts, ${written} hosts rows written\n`,
      );
    }
    const g = `4. Database cost, ${kind}${kind === 'monitor' ? '' : ' (BASELINE)'}, ${COST_N.toLocaleString('en-US')} leases`;
    add({ group: g, metric: 'new leases: statements per reservation', unit: '', runs: res.newStmts });
    add({ group: g, metric: 'new leases: transactions per reservation', unit: '', runs: res.newXacts });
    add({ group: g, metric: 'renewal storm: statements per renewal', unit: '', runs: res.renStmts });
    add({ group: g, metric: 'renewal storm: transactions per renewal', unit: '', runs: res.renXacts });
    const rw = add({ group: g, metric: 'renewal storm: hosts rows written', unit: '', runs: res.renWrites });
    if (kind === 'monitor') Object.assign(rw, { target: '0', met: agg(res.renWrites).max === 0 });
    add({ group: g, metric: 'renewal storm: host_id values consumed', unit: '', runs: res.renSeq });
  }
  notes.push(
    "Database cost: statements are pg_stat_statements calls (BEGIN/COMMIT included) by the role the monitor or the baseline logs in as; transactions are pg_stat_database deltas minus the load generator's own, so a stray autovacuum/analyze transaction shows up as noise; hosts rows written are rows whose xmin is newer than the start of the renewal storm.",
  );
}

/**
 * 7: `--cpu-prof` on the binary's own bundle under the pinned Node, 2,000/s database mode, records on disk and on
 * tmpfs; self time by category per lease, over the load window only (samples are stamped on the same monotonic
 * clock).
 */
async function profile(pg: Pg, dir: string, tmpfs: string | undefined) {
  await profileOn(pg, dir, 'disk');
  if (tmpfs) await profileOn(pg, tmpfs, 'tmpfs');
}

async function profileOn(pg: Pg, base: string, fs: 'disk' | 'tmpfs') {
  const profDir = join(base, `cpuprof-${fs}`);
  const out = join(base, `profile-out-${fs}`);
  mkdirSync(profDir);
  mkdirSync(out);
  await freshTables(pg);
  const w = await watchDiscovery(out);
  const sut = await startSut('monitor', pg, { outputDir: out, cpuProfDir: profDir });
  await sleep(1000); // start-up and the first catch-up are not what is profiled
  const hrUs = () => Number(process.hrtime.bigint() / 1000n);
  const cpu0 = cpuSeconds(sut.pid);
  const fromUs = hrUs();
  const s = await steadyDb(pg, 2000, PROFILE_S);
  await waitFiles(w, s.sent.size, 20000);
  const toUs = hrUs();
  const cpu = cpuSeconds(sut.pid) - cpu0;
  await w.stop();
  await sut.m.stop();
  await waitFor('cpu profile written', () => readdirSync(profDir).some((f) => f.endsWith('.cpuprofile')), 5000, 100);
  let b = readProfiles(profDir, { fromUs, toUs });
  const busy = (x: CpuBreakdown) => CATEGORIES.filter((c) => c !== 'idle').reduce((t, c) => t + x.us[c], 0);
  if (busy(b) === 0) {
    notes.push('CPU profile: no sample fell in the load window (clock mismatch?); the whole profile is counted.');
    b = readProfiles(profDir);
  }
  const n = s.sent.size;
  const total = busy(b);
  const pct = (us: number) => ((100 * us) / total).toFixed(1);
  const perLease = (us: number) => (us / n).toFixed(1);
  const lines = [
    `## Where the CPU goes per lease (db mode, ${s.rate.toFixed(0)}/s for ${PROFILE_S} s, records on ${FS_LABEL[fs]})`,
    '',
    `\`node --cpu-prof\` on dist/kea-lease-monitor.cjs under the pinned Node ${PINNED_NODE_VERSION}, ${n.toLocaleString('en-US')} leases; ` +
      'self time of each sample charged to the innermost bundle frame on its stack (native and Node-internal code, e.g. fs syscalls, ' +
      'JSON.parse, socket writes, to the bundle code that called it). A sample is thread time, so time blocked in a synchronous ' +
      'syscall (a rename waiting for the ext4 journal) counts: that is why the busy total can exceed the /proc CPU. Categories: bench/README.md.',
    '',
    '| Category | µs per lease | % of busy CPU |',
    '|---|---:|---:|',
    ...CATEGORIES.filter((c) => c !== 'idle').map((c) => `| ${c} | ${perLease(b.us[c])} | ${pct(b.us[c])} |`),
    `| **total (busy)** | **${perLease(total)}** | 100 |`,
    `| (idle, not counted) | ${perLease(b.us.idle)} | |`,
    '',
    `Cross-check from /proc (utime + stime, profiler running): ${((cpu * 1e6) / n).toFixed(1)} µs per lease. ` +
      `Profiles read: ${b.files}. Top modules by self time:`,
    '',
    '| Module | category | µs per lease |',
    '|---|---|---:|',
    ...[...b.byModule]
      .filter(([m]) => m !== '(idle)')
      .sort((x, y) => y[1] - x[1])
      .slice(0, 12)
      .map(([m, us]) => `| ${m} | ${m.startsWith('(') || m.startsWith('node:') ? '' : categoryOf(m)} | ${perLease(us)} |`),
    '',
    'Top functions (the innermost bundle function, with what it called outside the bundle):',
    '',
    '| Function | µs per lease |',
    '|---|---:|',
    ...[...b.byFunction]
      .filter(([f]) => f !== '(idle)')
      .sort((x, y) => y[1] - x[1])
      .slice(0, 12)
      .map(([f, us]) => `| ${f} | ${perLease(us)} |`),
  ];
  sections.push(lines.join('\n'));
  rmSync(out, { recursive: true, force: true });
  process.stdout.write(`\n${lines.join('\n')}\n\n`);
  const g = `7. CPU profile, db mode, 2,000/s, records on ${FS_LABEL[fs]}`;
  for (const c of CATEGORIES.filter((k) => k !== 'idle')) add({ group: g, metric: c, unit: 'µs/lease', runs: [b.us[c] / n] });
  add({ group: g, metric: 'total (busy)', unit: 'µs/lease', runs: [total / n] });
}

/** 6: leases committed while the monitor is stopped. */
async function catchup(dir: string) {
  const secs: number[] = [],
    rate: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const mark = cleanupMark();
    const pg = await startPg(join(dir, `catchup-pg-${r}`), { durable: true });
    await migrate(pg, true);
    const out = join(dir, `catchup-${r}`);
    mkdirSync(out);
    // In transactions of 1,000: one huge transaction spends most of its time in Kea's own lease4_stat trigger.
    for (let k = 0; k < CATCHUP_N; k += 1000) await burstOneTxn(pg, Math.min(1000, CATCHUP_N - k));
    const sut = await startSut('monitor', pg, { outputDir: out });
    const t0 = sut.m.startedAt;
    const tDone = await waitFor('catch-up', async () => (await hostCount(pg)) >= CATCHUP_N && now(), 300000, 100).catch(() => NaN);
    await sut.m.stop();
    secs.push((tDone - t0) / 1000);
    rate.push(CATCHUP_N / ((tDone - t0) / 1000));
    process.stdout.write(`    catch-up run ${r + 1}: ${((tDone - t0) / 1000).toFixed(2)} s\n`);
    await runCleanups(mark);
  }
  const g = `6. Catch-up of ${CATCHUP_N.toLocaleString('en-US')} leases committed while stopped`;
  add({ group: g, metric: 'process start to all reserved', unit: 's', runs: secs });
  add({ group: g, metric: 'reservations/s', unit: '/s', runs: rate });
}

async function main() {
  const started = new Date();
  if (!existsSync(MONITOR_BIN)) throw new Error(`${MONITOR_BIN} missing: make build`);
  const dir = tempDir('lmk-bench-');
  const other = foreignCpu(dir);
  process.stdout.write(`bench: runs=${RUNS}${QUICK ? ' (quick)' : ''}, only=${ONLY.join(',')}, dir ${dir}\n`);
  const pg = await startPg(join(dir, 'pg'), { durable: true, statStatements: true });
  await migrate(pg, true);
  let basePg: Pg | undefined;
  if (ONLY.includes('baseline')) {
    basePg = await startPg(join(dir, 'pg-baseline'), { durable: true, statStatements: true });
    await installBaselineTrigger(basePg);
  }
  const section = async (name: string, fn: () => Promise<void>) => {
    process.stdout.write(`# ${name}\n`);
    try {
      await fn();
    } catch (e) {
      notes.push(`${name} did not complete: ${(e as Error).message.split('\n')[0]}`);
      process.stdout.write(`  ${name} FAILED: ${(e as Error).stack}\n`);
    }
  };
  let tmpfs: string | undefined;
  if (['latency', 'footprint', 'profile'].some((k) => ONLY.includes(k))) {
    try {
      tmpfs = await mountTmpfs(join(dir, 'tmpfs'));
    } catch (e) {
      notes.push(`The tmpfs rows are missing: mounting a tmpfs failed (${(e as Error).message.split('\n')[0]}).`);
    }
  }
  if (ONLY.includes('latency') || ONLY.includes('footprint')) {
    await section('latency, database mode (tmpfs and disk), CPU and memory', () => latencyDb(pg, dir, tmpfs));
    if (ONLY.includes('latency')) await section('latency, file mode', () => latencyFile(pg, dir));
  }
  if (ONLY.includes('kea')) await section('latency under real Kea', () => realKea(dir));
  if (ONLY.includes('burst')) await section('burst', () => burst(pg, dir));
  if (basePg) await section('baseline', () => baseline(pg, basePg, dir));
  if (ONLY.includes('cost')) await section('database cost', () => cost(pg, basePg, dir));
  if (ONLY.includes('footprint')) {
    await section('footprint', async () => {
      for (let r = 0; r < RUNS; r++) {
        const out = join(dir, `start-${r}`);
        mkdirSync(out);
        const s = await startSut('monitor', pg, { outputDir: out });
        startupMs.push(s.readyMs);
        await s.m.stop();
      }
      const g = '5. Footprint';
      add({
        group: g,
        metric: 'start to "Listening for database lease events"',
        unit: 'ms',
        runs: startupMs,
        target: '< 500 ms',
        met: agg(startupMs).median < 500,
      });
      const size = statSync(MONITOR_BIN).size;
      add({
        group: g,
        metric: `binary size (${size.toLocaleString('en-US')} bytes, Node ${PINNED_NODE_VERSION})`,
        unit: 'MiB',
        runs: [size / 2 ** 20],
      });
    });
  }
  if (ONLY.includes('profile')) await section('CPU profile', () => profile(pg, dir, tmpfs));
  if (ONLY.includes('catchup')) await section('catch-up', () => catchup(dir));
  await runCleanups();
  const o = other.stop();
  if (unstamped)
    notes.push(`${unstamped} discovery files were written but not seen by the inotify watcher; they are left out of the percentiles.`);
  if (missingExamples.length)
    notes.push(`Leases without a discovery file 20 s after their commit, for example: ${missingExamples.join(', ')}.`);
  notes.unshift(
    `Other processes on this machine used at least ${o.foreign.toFixed(0)} CPU-seconds during the run (of ${(o.wall * cpus().length).toFixed(0)} available)${o.foreign > 0.05 * o.wall * cpus().length ? ': the machine was shared, expect spread' : ''}.`,
  );
  const seconds = (Date.now() - started.getTime()) / 1000;
  const cmd = process.env.MAKELEVEL
    ? `make bench${argv.length ? ` BENCH_ARGS="${argv.join(' ')}"` : ''}`
    : `node --import tsx bench/run.ts ${argv.join(' ')}`.trim();
  const md = markdown(cmd, started, seconds);
  if (WRITE) {
    const kept = existsSync(BENCHMARKS_FILE) ? keptSections(readFileSync(BENCHMARKS_FILE, 'utf8')) : [];
    writeFileSync(BENCHMARKS_FILE, [md, ...kept].join('\n'));
  }
  process.stdout.write(`\n${md}\n`);
  process.stdout.write(`bench: ${rows.length} figures in ${Math.round(seconds)} s${WRITE ? ', written to BENCHMARKS.md' : ''}\n`);
}

// An exception escaping an event handler must still stop Kea, PostgreSQL and the namespaces.
process.on('uncaughtException', (e) => {
  process.stderr.write(`uncaught: ${e.stack}\n`);
  void runCleanups().finally(() => process.exit(1));
});

main()
  .catch((e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await runCleanups();
    process.exit(process.exitCode ?? 0);
  });
