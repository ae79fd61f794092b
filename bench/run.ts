// `make bench`: the six benchmarks of issue 4, each repeated --runs times, printed and written to BENCHMARKS.md.
// Usage: node --import tsx bench/run.ts [--runs 3] [--quick] [--only latency,kea,burst,baseline,cost,footprint,catchup] [--no-write]
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { perfdhcp } from '../test/e2e/lib/dhcp';
import { startKea } from '../test/e2e/lib/kea';
import { migrate, MONITOR_BIN } from '../test/e2e/lib/monitor';
import { createNet, netnsUnavailable } from '../test/e2e/lib/netns';
import { Pg, query, ROOT, startPg } from '../test/e2e/lib/pg';
import { cleanupMark, now, runCleanups, sleep, tempDir, waitFor } from '../test/e2e/lib/proc';
import { burstManyTxns, burstOneTxn, renewAll, steadyCsv, steadyDb } from './lib/load';
import { add, markdown, notes, rows } from './lib/report';
import { agg, cpuSeconds, foreignCpu, percentile, sampleRss } from './lib/stats';
import { installBaselineTrigger, Kind, startSut } from './lib/sut';
import { tailCsv, watchDiscovery } from './lib/watch';

const argv = process.argv.slice(2);
const flag = (k: string) => argv.includes(`--${k}`);
const opt = (k: string, d: string) => (argv.indexOf(`--${k}`) >= 0 ? argv[argv.indexOf(`--${k}`) + 1] : d);
const QUICK = flag('quick');
const RUNS = Number(opt('runs', QUICK ? '1' : '3'));
const ONLY = opt('only', 'latency,kea,burst,baseline,cost,footprint,catchup').split(',');
const STEADY_S = QUICK ? 4 : 10;
const BURST_N = QUICK ? 10000 : 50000;
const CATCHUP_N = QUICK ? 20000 : 100000;
const COST_N = QUICK ? 2000 : 10000;
const KEA_S = QUICK ? 5 : 15;

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

/** 1 + 5: steady synthetic load, both modes, 500/s and 2000/s; RSS and CPU of the monitor at 2000/s in db mode. */
async function latency(pg: Pg, dir: string) {
  for (const mode of ['db', 'file'] as const) {
    for (const rate of [500, 2000]) {
      const p50: number[] = [],
        p95: number[] = [],
        p99: number[] = [],
        achieved: number[] = [],
        missing: number[] = [];
      const peak: number[] = [],
        steady: number[] = [],
        cpu10k: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const out = join(dir, `lat-${mode}-${rate}-${r}`);
        mkdirSync(out);
        const leaseFile = join(dir, `lat-${mode}-${rate}-${r}.csv`);
        const w = await watchDiscovery(out);
        const sut = await startSut('monitor', pg, {
          outputDir: out,
          mode,
          leaseFile,
          stateFile: join(dir, `pos-${mode}-${rate}-${r}.json`),
        });
        if (mode === 'db') startupMs.push(sut.readyMs);
        const rss = sampleRss(sut.pid);
        const cpu0 = cpuSeconds(sut.pid);
        const s = mode === 'db' ? await steadyDb(pg, rate, STEADY_S) : await steadyCsv(leaseFile, rate, STEADY_S);
        await waitFiles(w, s.sent.size, 20000);
        const cpu = cpuSeconds(sut.pid) - cpu0;
        const mem = rss.stop();
        const l = latencies(s.sent, await w.dump(), out);
        await w.stop();
        await sut.m.stop();
        p50.push(l.p50);
        p95.push(l.p95);
        p99.push(l.p99);
        achieved.push(s.rate);
        missing.push(l.missing);
        peak.push(mem.peak);
        steady.push(mem.steady);
        cpu10k.push((cpu / s.sent.size) * 10000);
        process.stdout.write(
          `    ${mode} ${rate}/s run ${r + 1}: ${s.sent.size} leases at ${s.rate.toFixed(0)}/s, p50 ${l.p50.toFixed(1)} p99 ${l.p99.toFixed(1)} max ${l.max.toFixed(1)} ms, ${l.missing} without a file\n`,
        );
      }
      const g = `1. Latency, synthetic, ${mode} mode, ${rate}/s`;
      add({ group: g, metric: 'achieved insert rate', unit: 'leases/s', runs: achieved });
      add({ group: g, metric: 'p50', unit: 'ms', runs: p50 });
      add({ group: g, metric: 'p95', unit: 'ms', runs: p95 });
      const t = mode === 'db' ? 25 : 50;
      const r99 = add({ group: g, metric: 'p99', unit: 'ms', runs: p99 });
      if (rate === 2000 || mode === 'file') Object.assign(r99, { target: `< ${t} ms`, met: agg(p99).median < t });
      add({ group: g, metric: 'leases without a discovery file after 20 s', unit: '', runs: missing });
      if (mode === 'db' && rate === 2000 && ONLY.includes('footprint')) {
        add({
          group: '5. Footprint (db mode, 2,000/s)',
          metric: 'peak RSS',
          unit: 'MB',
          runs: peak,
          target: '< 120 MB',
          met: agg(peak).median < 120,
        });
        add({ group: '5. Footprint (db mode, 2,000/s)', metric: 'steady RSS', unit: 'MB', runs: steady });
        add({ group: '5. Footprint (db mode, 2,000/s)', metric: 'CPU per 10,000 leases', unit: 's', runs: cpu10k });
      }
    }
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
  const sut = await startSut(kind, pg, { outputDir: out });
  const before = await hostCount(pg);
  let t0: number, tCommit: number;
  if (how === 'one') ({ t0, tCommit } = await burstOneTxn(pg, n));
  else {
    const b = await burstManyTxns(pg, n);
    t0 = b.t0;
    tCommit = b.tDone;
  }
  const limit = kind === 'monitor' ? 120000 : 600000;
  const tDone = await waitFor('burst reserved', async () => (await hostCount(pg)) - before >= n && now(), limit, 50).catch(() => NaN);
  await sut.m.stop();
  return {
    fromCommit: n / ((tDone - tCommit) / 1000),
    fromStart: n / ((tDone - t0) / 1000),
    writer: n / ((tCommit - t0) / 1000),
    total: (tDone - t0) / 1000,
    lagMs: tDone - tCommit,
  };
}

/** 2 + 3: 50,000 leases at once, ours, then the seed BASELINE one row at a time. */
async function burst(pg: Pg, basePg: Pg | undefined, dir: string) {
  const ours: Record<string, number[]> = { one: [], many: [], manyWriter: [], lag: [] };
  if (ONLY.includes('burst')) {
    for (const how of ['one', 'many'] as const) {
      for (let r = 0; r < RUNS; r++) {
        const b = await burstRun('monitor', pg, dir, how, BURST_N, `${how}-${r}`);
        ours[how].push(how === 'one' ? b.fromCommit : b.fromStart);
        if (how === 'many') {
          ours.manyWriter.push(b.writer);
          ours.lag.push(b.lagMs);
        }
        process.stdout.write(
          `    burst ${how} run ${r + 1}: ${b.total.toFixed(2)} s total, ${(how === 'one' ? b.fromCommit : b.fromStart).toFixed(0)} reservations/s\n`,
        );
      }
    }
    const g = `2. Burst of ${BURST_N.toLocaleString('en-US')} leases`;
    add({
      group: g,
      metric: 'one transaction: reservations/s after its commit',
      unit: '/s',
      runs: ours.one,
      target: '>= 10,000/s',
      met: agg(ours.one).median >= 10000,
    });
    add({
      group: g,
      metric: 'one lease per transaction: reservations/s from the first insert',
      unit: '/s',
      runs: ours.many,
      target: '>= 10,000/s',
      met: agg(ours.many).median >= 10000,
    });
    add({ group: g, metric: "(one lease per transaction: the writer's own inserts/s)", unit: '/s', runs: ours.manyWriter });
    add({ group: g, metric: '(one lease per transaction: last reservation after the last commit)', unit: 'ms', runs: ours.lag });
  }
  if (basePg && ONLY.includes('baseline')) {
    const g = `3. BASELINE (seed design) vs monitor, ${BURST_N.toLocaleString('en-US')} leases in one transaction`;
    for (const kind of ['baseline-select-insert', 'baseline-upsert'] as const) {
      const xs: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const b = await burstRun(kind, basePg, dir, 'one', BURST_N, `${kind}-${r}`);
        xs.push(b.fromCommit);
        process.stdout.write(`    ${kind} run ${r + 1}: ${b.total.toFixed(1)} s, ${b.fromCommit.toFixed(0)} reservations/s\n`);
      }
      add({ group: g, metric: `${kind}: reservations/s`, unit: '/s', runs: xs });
      if (ours.one.length)
        add({
          group: g,
          metric: `ratio monitor / ${kind}`,
          unit: 'x',
          runs: ours.one.map((o) => o / agg(xs).median),
          note: '(each monitor run / baseline median)',
        });
    }
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
  if (ONLY.includes('latency') || ONLY.includes('footprint')) await section('latency (synthetic) and footprint', () => latency(pg, dir));
  if (ONLY.includes('kea')) await section('latency under real Kea', () => realKea(dir));
  if (ONLY.includes('burst') || ONLY.includes('baseline')) await section('burst and baseline', () => burst(pg, basePg, dir));
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
      add({ group: g, metric: 'binary size', unit: 'MB', runs: [statSync(MONITOR_BIN).size / 2 ** 20] });
    });
  }
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
  if (!flag('no-write')) writeFileSync(join(ROOT, 'BENCHMARKS.md'), md);
  process.stdout.write(`\n${md}\n`);
  process.stdout.write(
    `bench: ${rows.length} figures in ${Math.round(seconds)} s${flag('no-write') ? '' : ', written to BENCHMARKS.md'}\n`,
  );
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
