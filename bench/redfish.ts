// Does --redfish-probe change reservation latency or burst throughput? The database-mode steady latency
// (1,000 leases/s) and the one-transaction burst, with the probe off and on, alternating, in the same run.
// The monitor runs in a private network namespace where the benchmark's lease range (10.100.0.0/16) is
// local and closed, so every probe is a real HTTPS attempt that is refused at once and retried (default
// --redfish-retry-for 10m): probes run throughout, and no packet leaves the namespace.
// Usage (root, after make build): node --import tsx bench/redfish.ts [--runs 3] [--quick] [--no-write]   (make bench-redfish)
// Writes its section of BENCHMARKS.md (kept when make bench rewrites the rest) unless --no-write.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { migrate, Monitor, MONITOR_BIN, startProcess, LISTENING } from '../test/e2e/lib/monitor';
import { netnsUnavailable } from '../test/e2e/lib/netns';
import { Pg, pgEnv, query, startPg } from '../test/e2e/lib/pg';
import { now, onCleanup, run, sleep, tempDir, waitFor } from '../test/e2e/lib/proc';
import { benchArgs } from './lib/args';
import { publishSection, runBench } from './lib/entry';
import { dbRunArgs } from './lib/sut';
import { burstOneTxn, freshTables, steadyDb } from './lib/load';
import { machine } from './lib/report';
import { agg, cpuSeconds, percentile, sampleRss } from './lib/stats';
import { mountTmpfs } from './lib/tmpfs';
import { watchDiscovery } from './lib/watch';

const args = benchArgs(
  'bench/redfish.ts',
  'Latency and burst with --redfish-probe off and on; its section of BENCHMARKS.md unless --no-write.',
  {
    runs: { type: 'string', count: true, help: 'alternating pairs (default 3; 1 with --quick)' },
    quick: { type: 'boolean', help: 'smaller loads and shorter runs' },
    'no-write': { type: 'boolean', help: 'print only; leave BENCHMARKS.md alone' },
  },
);
const QUICK = args.quick ?? false;
const RUNS = Number(args.runs ?? (QUICK ? '1' : '3'));
const STEADY_S = QUICK ? 4 : 10;
const RATE = 1000;
const BURST_N = QUICK ? 10000 : 50000;
const NS = `lmk-bench-rf-${process.pid}`;
const METRICS_PORT = 9465;

async function namespace(): Promise<void> {
  await run('ip', ['netns', 'add', NS]);
  onCleanup(`netns ${NS}`, () => run('ip', ['netns', 'del', NS], { allowFail: true }).then(() => undefined));
  await run('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  // Every benchmark lease address is local here, and nothing listens on 443: each connect is refused.
  await run('ip', ['-n', NS, 'route', 'add', 'local', '10.100.0.0/16', 'dev', 'lo']);
}

async function startMonitor(pg: Pg, out: string, probe: boolean): Promise<Monitor> {
  const args = [...dbRunArgs(out, METRICS_PORT), ...(probe ? ['--redfish-probe'] : [])];
  const m = startProcess('ip', ['netns', 'exec', NS, MONITOR_BIN, ...args], { ...process.env, ...pgEnv(pg), NODE_OPTIONS: '' });
  await m.waitLog(LISTENING, 15000);
  return m;
}

/** Probe attempts made and probes ended, from the monitor's own metrics. */
async function probeCounts(): Promise<{ attempts: number; ended: number }> {
  const text = (await run('ip', ['netns', 'exec', NS, 'curl', '-s', `http://127.0.0.1:${METRICS_PORT}/metrics`], { allowFail: true }))
    .stdout;
  const attempts = Number(/^kea_lease_monitor_redfish_probe_duration_seconds_count (\S+)$/m.exec(text)?.[1] ?? 0);
  const ended = [...text.matchAll(/^kea_lease_monitor_redfish_probes_total\{result="[^"]+"\} (\S+)$/gm)].reduce(
    (a, m) => a + Number(m[1]),
    0,
  );
  return { attempts, ended };
}

const hostCount = async (pg: Pg) => Number((await query<{ n: string }>(pg, 'SELECT count(*) AS n FROM hosts'))[0].n);

async function steady(pg: Pg, records: string, probe: boolean, r: number) {
  const out = join(records, `steady-${probe ? 'on' : 'off'}-${r}`);
  mkdirSync(out);
  await freshTables(pg);
  const w = await watchDiscovery(out);
  const m = await startMonitor(pg, out, probe);
  const cpu0 = cpuSeconds(m.proc.pid as number); // `ip netns exec` execs the monitor: same pid
  const rss = sampleRss(m.proc.pid as number);
  const s = await steadyDb(pg, RATE, STEADY_S);
  await waitFor('records', async () => (await w.count()) >= s.sent.size, 20000, 100).catch(() => undefined);
  const done = await w.dump();
  const xs = [...s.sent].map(([mac, t0]) => (done.get(mac) ?? NaN) - t0).filter((x) => !Number.isNaN(x));
  xs.sort((a, b) => a - b);
  const cpu = cpuSeconds(m.proc.pid as number) - cpu0;
  const peakMb = rss.stop().peak;
  const probes = probe ? await probeCounts() : { attempts: 0, ended: 0 };
  await w.stop();
  await m.stop();
  rmSync(out, { recursive: true, force: true });
  return {
    n: s.sent.size,
    rate: s.rate,
    p50: percentile(xs, 50),
    p99: percentile(xs, 99),
    missing: s.sent.size - xs.length,
    cpu,
    peakMb,
    ...probes,
  };
}

async function burst(pg: Pg, records: string, probe: boolean, r: number) {
  const out = join(records, `burst-${probe ? 'on' : 'off'}-${r}`);
  mkdirSync(out);
  await freshTables(pg);
  const m = await startMonitor(pg, out, probe);
  const rss = sampleRss(m.proc.pid as number);
  const before = await hostCount(pg);
  const { tCommit } = await burstOneTxn(pg, BURST_N);
  const tDone = await waitFor('burst reserved', async () => (await hostCount(pg)) - before >= BURST_N && now(), 120000, 50).catch(
    () => NaN,
  );
  await sleep(500);
  const peakMb = rss.stop().peak;
  const probes = probe ? await probeCounts() : { attempts: 0, ended: 0 };
  await m.stop();
  rmSync(out, { recursive: true, force: true });
  return { perSecond: BURST_N / ((tDone - tCommit) / 1000), peakMb, ...probes };
}

async function main(): Promise<number> {
  const why = process.getuid?.() !== 0 ? 'not root' : await netnsUnavailable();
  if (why) {
    process.stdout.write(`bench-redfish SKIPPED: ${why}\n`);
    return 0;
  }
  const started = new Date();
  const dir = tempDir('lmk-bench-rf-');
  await namespace();
  const pg = await startPg(join(dir, 'pg'), { durable: true });
  await migrate(pg, true);
  // Records on a tmpfs of the run's own: the disk's noise here is several-fold from one minute to the next, and is not the probe's.
  const records = await mountTmpfs(join(dir, 'records'));
  const lat: Record<'off' | 'on', Awaited<ReturnType<typeof steady>>[]> = { off: [], on: [] };
  const bur: Record<'off' | 'on', Awaited<ReturnType<typeof burst>>[]> = { off: [], on: [] };
  for (let r = 0; r < RUNS; r++) {
    for (const probe of r % 2 ? [true, false] : [false, true]) {
      const k = probe ? 'on' : 'off';
      const x = await steady(pg, records, probe, r);
      lat[k].push(x);
      process.stdout.write(
        `  steady ${RATE}/s, probe ${k}, run ${r + 1}: ${x.n} leases at ${x.rate.toFixed(0)}/s, p50 ${x.p50.toFixed(2)} p99 ${x.p99.toFixed(2)} ms, ${x.missing} without a record, monitor CPU ${x.cpu.toFixed(2)} s, peak RSS ${x.peakMb.toFixed(1)} MB${probe ? `; ${x.attempts} probe attempts, ${x.ended} probes ended` : ''}\n`,
      );
      const b = await burst(pg, records, probe, r);
      bur[k].push(b);
      process.stdout.write(
        `  burst ${BURST_N} in one transaction, probe ${k}, run ${r + 1}: ${b.perSecond.toFixed(0)} reservations/s after the commit, peak RSS ${b.peakMb.toFixed(1)} MB${probe ? `; ${b.attempts} probe attempts` : ''}\n`,
      );
    }
  }
  const med = (xs: number[]) => agg(xs).median;
  const both = (f: (x: (typeof lat.off)[number]) => number, digits = 2) =>
    `${med(lat.off.map(f)).toFixed(digits)} | ${med(lat.on.map(f)).toFixed(digits)}`;
  const lines = [
    `## --redfish-probe off and on (\`make bench-redfish${QUICK ? ' BENCH_ARGS="--quick"' : ''}\`)`,
    '',
    ...machine(),
    `- Date: ${started.toISOString()} (took ${Math.round((Date.now() - started.getTime()) / 1000)} s); ${RUNS} runs, probe off and on alternating`,
    '',
    `${STEADY_S} s at ${RATE} leases/s in database mode, records on a tmpfs of the run's own (so the disk's noise is not read as the probe's); a ${BURST_N}-lease burst in one`,
    'transaction. The monitor runs in a private network namespace where every lease address is local and closed, so',
    'each probe is a real HTTPS attempt, refused and retried, throughout the run.',
    '',
    '| measurement (median of runs) | probe off | probe on |',
    '|---|---|---|',
    `| db mode ${RATE}/s, p50 (ms) | ${both((x) => x.p50)} |`,
    `| db mode ${RATE}/s, p99 (ms) | ${both((x) => x.p99)} |`,
    `| db mode ${RATE}/s, p99 (ms), each run | ${lat.off.map((x) => x.p99.toFixed(1)).join(', ')} | ${lat.on.map((x) => x.p99.toFixed(1)).join(', ')} |`,
    `| db mode ${RATE}/s, achieved rate (leases/s) | ${both((x) => x.rate, 0)} |`,
    `| db mode ${RATE}/s, monitor CPU per run (s) | ${both((x) => x.cpu)} |`,
    `| db mode ${RATE}/s, monitor peak RSS (MB) | ${both((x) => x.peakMb, 1)} |`,
    `| burst of ${BURST_N}, reservations/s after the commit | ${med(bur.off.map((x) => x.perSecond)).toFixed(0)} | ${med(bur.on.map((x) => x.perSecond)).toFixed(0)} |`,
    `| burst of ${BURST_N}, reservations/s, each run | ${bur.off.map((x) => x.perSecond.toFixed(0)).join(', ')} | ${bur.on.map((x) => x.perSecond.toFixed(0)).join(', ')} |`,
    `| burst of ${BURST_N}, monitor peak RSS (MB) | ${med(bur.off.map((x) => x.peakMb)).toFixed(1)} | ${med(bur.on.map((x) => x.peakMb)).toFixed(1)} |`,
    `| probe attempts during a steady run / a burst run | | ${med(lat.on.map((x) => x.attempts)).toFixed(0)} / ${med(bur.on.map((x) => x.attempts)).toFixed(0)} |`,
  ];
  const md = lines.join('\n');
  publishSection('bench-redfish', md);
  return 0;
}

runBench('bench-redfish', main);
