// Issue 19: costs that stay flat as a fleet grows. At two scales, 20,000 and 200,000 live leases
// (hosts 5,000 / 50,000 rows, of which 1,000 / 10,000 the monitor's; subnets 200 / 2,000; --quick: a tenth
// of each), loaded with one INSERT ... SELECT generate_series each into Kea's real schema, the built
// binary's: (a) `plan` wall time and peak RSS; (c) `reservations list --json` wall time and peak RSS;
// (d) the daemon's start with the whole backlog (no reservation made yet): peak RSS and time until every
// selected lease is reserved and recorded; (b) then, in that same daemon, a later reconcile pass with
// nothing to do (from its metrics). Printed as one table with the growth from the small scale to the large.
// Usage (root, after make build): node --import tsx bench/fleet.ts [--runs 1] [--passes 3] [--quick] [--no-write]
// (make bench-fleet). Writes its section of BENCHMARKS.md (kept when make bench rewrites the rest) unless --no-write.
//
// The fleet: lease g (0 <= g < N) is in subnet 1 + g/100, address 10.100.0.0 + (g/100)*256 + 10 + g%100,
// MAC 02:aa:<g> when g%20 = 0 (selected: --allow-mac-prefix 02:aa, N/20 leases) else 02:bb:<g> (not
// selected). hosts holds, for g%20 = 0, the monitor's reservation of that lease (its mark in user_context,
// exactly as the writer makes it) and, for g%20 in 1..4, an operator's reservation of that device
// (user_context alternately NULL and a JSON object of the operator's): N/4 rows in all. The monitor's
// selection policy is what keeps 10,000 of 200,000 leases its own; every pass still reads all of them.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { migrate, MONITOR_BIN, startProcess, LISTENING } from '../test/e2e/lib/monitor';
import { client, Pg, pgEnv, query, startPg } from '../test/e2e/lib/pg';
import { now, tempDir, waitFor } from '../test/e2e/lib/proc';
import { makeMark, newRowContext } from '../src/ownership';
import { compilePolicy } from '../src/policy/select';
import { CATCH_UP_PAGE, catchUpQuery, recordedMacs } from '../src/sources/catch-up';
import { LeasePrefilter, leasePrefilter } from '../src/sources/lease-prefilter';
import { benchArgs } from './lib/args';
import { publishSection, runBench } from './lib/entry';
import { freshTables } from './lib/load';
import { fmt, machine } from './lib/report';
import { agg, cpuSeconds, rssMb, sampleRss } from './lib/stats';

const args = benchArgs('bench/fleet.ts', 'Costs as a fleet grows, at two scales; its section of BENCHMARKS.md unless --no-write.', {
  runs: { type: 'string', count: true, help: 'repetitions at each scale (default 1)' },
  passes: { type: 'string', count: true, help: 'idle reconcile passes timed per run (default 3)' },
  quick: { type: 'boolean', help: 'a tenth of each scale' },
  'no-write': { type: 'boolean', help: 'print only; leave BENCHMARKS.md alone' },
});
const QUICK = args.quick ?? false;
const RUNS = Number(args.runs ?? '1');
const PASSES = Number(args.passes ?? '3');
const SCALES = QUICK ? [2_000, 20_000] : [20_000, 200_000];
const PER_SUBNET = 100;
const ADDR = 0x0a640000; // 10.100.0.0
const PORT = 20000 + (process.pid % 20000);
const RECONCILE_S = 5;
const TIME = '/usr/bin/time';
const REPLAY_LIMIT_MB = 150; // make replay-rss (mk/filemode.mk): 1,000,000-lease file-mode replay
const POLICY = ['--allow-mac-prefix', '02:aa'];
// The same policy as the reconcile pass's query applies it.
const PREFILTER = leasePrefilter(
  compilePolicy({ subnetIds: [], allowMacPrefix: ['02:aa'], denyMacPrefix: [], allowHostname: [], denyHostname: [], allowAddress: [] }),
);
const env = (pg: Pg) => ({ ...process.env, ...pgEnv(pg), NODE_OPTIONS: '' });

interface Shape {
  leases: number;
  subnets: number;
  hosts: number;
  mine: number;
  /** Operators' rows: of leased devices, none selected by POLICY. */
  operators: number;
}
const shape = (n: number): Shape => ({ leases: n, subnets: n / PER_SUBNET, hosts: n / 4, mine: n / 20, operators: n / 5 });

const MAC = `decode(CASE WHEN g % 20 = 0 THEN '02aa' ELSE '02bb' END || lpad(to_hex(g), 8, '0'), 'hex')`;
const IP = `$1::bigint + (g / ${PER_SUBNET}) * 256 + 10 + g % ${PER_SUBNET}`;
const SUBNET = `1 + g / ${PER_SUBNET}`;
const MINE = `user_context LIKE '{"kea-lease-monitor"%'`;

/** lease4 and hosts of one scale, on empty tables; seconds for each INSERT and the ANALYZE. */
async function load(pg: Pg, s: Shape): Promise<{ lease4: number; hosts: number; analyze: number }> {
  await freshTables(pg);
  const c = client(pg, 'bench-fleet-load');
  await c.connect();
  try {
    let t = now();
    // The monitor's NOTIFY trigger is off while loading: nobody listens, and the leases are a backlog
    // committed while no monitor ran. Kea's own lease4 triggers (lease4_stat) stay on.
    await c.query('BEGIN');
    await c.query('ALTER TABLE lease4 DISABLE TRIGGER kea_lm_lease4_notify_ins');
    await c.query(
      `INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state, user_context)
       SELECT ${IP}, ${MAC}, NULL, 86400, now() + interval '1 day', ${SUBNET}, false, false, 'n-' || g, 0, NULL
         FROM generate_series(0, $2::int - 1) g`,
      [ADDR, s.leases],
    );
    await c.query('ALTER TABLE lease4 ENABLE TRIGGER kea_lm_lease4_notify_ins');
    await c.query('COMMIT');
    const lease4 = (now() - t) / 1000;
    t = now();
    // As the SQL writer inserts its own rows (migrations/0005): these six columns, the mark alone in user_context.
    await c.query(
      `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
       SELECT ${MAC}, 0, ${SUBNET}, ${IP}, CASE WHEN g % 20 = 0 THEN 'n-' ELSE 'op-' END || g,
              CASE WHEN g % 20 = 0 THEN $3 WHEN g % 2 = 0 THEN '{"owner": "ops", "rack": "r' || g % 97 || '"}' END
         FROM generate_series(0, $2::int - 1) g WHERE g % 20 < 5`,
      [ADDR, s.leases, newRowContext(makeMark('database'))],
    );
    const hosts = (now() - t) / 1000;
    t = now();
    await c.query('ANALYZE');
    const analyze = (now() - t) / 1000;
    const { rows } = await c.query<{ hosts: string; mine: string; leases: string; subnets: string }>(
      `SELECT (SELECT count(*) FROM hosts) AS hosts, (SELECT count(*) FROM hosts WHERE ${MINE}) AS mine,
              (SELECT count(*) FROM lease4) AS leases, (SELECT count(DISTINCT subnet_id) FROM lease4) AS subnets`,
    );
    const got = rows[0];
    if (
      Number(got.hosts) !== s.hosts ||
      Number(got.mine) !== s.mine ||
      Number(got.leases) !== s.leases ||
      Number(got.subnets) !== s.subnets
    )
      throw new Error(`load: got ${JSON.stringify(got)}, wanted ${JSON.stringify(s)}`);
    return { lease4, hosts, analyze };
  } finally {
    await c.end();
  }
}

interface Timed {
  wall: number;
  peakMb: number;
  lines: number;
  last: string;
  code: number | null;
  stderr: string;
}

/**
 * The binary under GNU time: wall seconds, peak RSS (its max RSS: VmHWM at exit). stdout goes to a file,
 * then its lines are counted: a pipe would not do, the binary's process.exit drops what a slower reader
 * has not taken yet (seen with `plan --json | wc -l`).
 */
async function timed(pg: Pg, dir: string, args: string[]): Promise<Timed> {
  const tag = `${process.hrtime.bigint()}`;
  const tfile = join(dir, `time-${tag}`);
  const ofile = join(dir, `stdout-${tag}`);
  const fd = openSync(ofile, 'w');
  const t0 = now();
  const p = spawn(TIME, ['-f', '%e %M', '-o', tfile, MONITOR_BIN, ...args], { env: env(pg), stdio: ['ignore', fd, 'pipe'] });
  closeSync(fd);
  let stderr = '';
  p.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  const code = await new Promise<number | null>((resolve) => p.on('close', (c) => resolve(c)));
  const wall = (now() - t0) / 1000;
  // GNU time's last line is "%e %M" (a line before it says so when the command failed or was signalled).
  const out = readFileSync(tfile, 'utf8').trim().split('\n');
  const [, kb] = (out[out.length - 1] ?? '').split(' ').map(Number);
  const text = readFileSync(ofile, 'utf8').trimEnd().split('\n');
  rmSync(ofile);
  return { wall, peakMb: kb / 1024, lines: text.length, last: text[text.length - 1] ?? '', code, stderr };
}

function check(what: string, t: Timed, want: (sum: Record<string, unknown>) => string | null): void {
  if (t.code !== 0) throw new Error(`${what} exited ${t.code}: ${t.stderr.trim().split('\n').slice(-4).join(' | ')}`);
  const bad = want(JSON.parse(t.last) as Record<string, unknown>);
  if (bad) throw new Error(`${what}: ${bad} (summary ${t.last})`);
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${PORT}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

const countJson = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.json')).length : 0);
const mineCount = async (pg: Pg) => Number((await query<{ n: string }>(pg, `SELECT count(*) AS n FROM hosts WHERE ${MINE}`))[0].n);

interface Start {
  peakMb: number;
  steadyMb: number;
  allDone: number;
  passes: { seconds: number; cpu: number }[];
  /** The MACs its records had at the end: the floor's query is given them as the daemon's pass is. */
  recorded: string;
}

/**
 * (d) then (b): the monitor's rows deleted, a fresh output directory, the daemon started on the whole
 * backlog; peak RSS (samples and VmHWM) from spawn until every selected lease is reserved and recorded.
 * Then, nothing left to do, PASSES reconcile passes that started after that (the first pass ending
 * after the catch-up may have begun during it, so it is skipped). `every`: no selection policy, so the
 * start reserves every lease but the operators' (theirs are left alone, as foreign, and recorded).
 */
async function start(pg: Pg, dir: string, s: Shape, r: number, every: boolean): Promise<Start> {
  const mine = every ? s.leases - s.operators : s.mine;
  const records = every ? s.leases : s.mine;
  await query(pg, `DELETE FROM hosts WHERE ${MINE}`);
  await query(pg, 'ANALYZE hosts');
  const out = join(dir, `out-${s.leases}-${r}-${every ? 'every' : 'policy'}`);
  mkdirSync(out);
  const m = startProcess(
    MONITOR_BIN,
    [
      'run',
      '--use-database-events',
      ...(every ? [] : POLICY),
      '--reconcile-interval',
      String(RECONCILE_S),
      '--output-dir',
      out,
      '--metrics-port',
      String(PORT),
      '--log-format',
      'json',
    ],
    env(pg),
  );
  const pid = m.proc.pid as number;
  const rss = sampleRss(pid, 50);
  try {
    await m.waitLog(LISTENING, 60_000);
    const allDone = await waitFor(
      'every selected lease reserved and recorded',
      async () => (await mineCount(pg)) === mine && countJson(out) === records && now(),
      600_000,
      every ? 250 : 100,
    );
    const mem = rss.stop();
    const peakMb = Math.max(mem.peak, rssMb(pid).hwm);
    let runs = await metric('kea_lease_monitor_reconcile_runs_total');
    await waitFor('a reconcile pass', async () => (await metric('kea_lease_monitor_reconcile_runs_total')) > runs, 120_000, 100);
    runs = await metric('kea_lease_monitor_reconcile_runs_total');
    const passes: Start['passes'] = [];
    while (passes.length < PASSES) {
      const s0 = await metric('kea_lease_monitor_reconcile_seconds_total');
      const c0 = cpuSeconds(pid);
      await waitFor('a reconcile pass', async () => (await metric('kea_lease_monitor_reconcile_runs_total')) > runs, 120_000, 100);
      runs = await metric('kea_lease_monitor_reconcile_runs_total');
      passes.push({ seconds: (await metric('kea_lease_monitor_reconcile_seconds_total')) - s0, cpu: cpuSeconds(pid) - c0 });
    }
    if ((await mineCount(pg)) !== mine || countJson(out) !== records) throw new Error('the reconcile passes changed the reservations');
    const recorded = recordedMacs(
      new Set(
        readdirSync(out)
          .filter((n) => n.endsWith('.json'))
          .map((n) => n.slice(0, -5)),
      ),
    );
    return { peakMb, steadyMb: mem.steady, allDone: (allDone - m.startedAt) / 1000, passes, recorded };
  } finally {
    rss.stop();
    await m.stop();
    rmSync(out, { recursive: true, force: true });
  }
}

/** A reconcile pass's own query (src/sources/catch-up.ts), every page, read by a bare client. */
async function reconcileFloor(pg: Pg, prefilter: LeasePrefilter | null, recorded: string): Promise<number> {
  const c = client(pg, 'bench-fleet-floor');
  await c.connect();
  try {
    await c.query('SET jit = off'); // as the monitor's sessions (src/db/connection.ts)
    const t0 = now();
    for (let after = 0, first = true; ; first = false) {
      const q = catchUpQuery(after, new Set(), true, prefilter, first ? recorded : null);
      const { rows } = await c.query<{ address: string }>(q.text, q.values);
      if (rows.length === 0) break;
      after = Number(rows[rows.length - 1].address);
      if (rows.length < CATCH_UP_PAGE) break;
    }
    return (now() - t0) / 1000;
  } finally {
    await c.end();
  }
}

interface StartFigures {
  peakMb: number[];
  done: number[];
  passS: number[];
  passCpu: number[];
}

interface Figures {
  load: { lease4: number; hosts: number; analyze: number };
  planWall: number[];
  planMb: number[];
  listWall: number[];
  listMb: number[];
  floorS: number[];
  floorEveryS: number[];
  policy: StartFigures;
  every: StartFigures;
}

const noStart = (): StartFigures => ({ peakMb: [], done: [], passS: [], passCpu: [] });

async function scale(pg: Pg, dir: string, s: Shape): Promise<Figures> {
  const say = (x: string) => process.stdout.write(`  ${s.leases} leases: ${x}\n`);
  const f: Figures = {
    load: await load(pg, s),
    planWall: [],
    planMb: [],
    listWall: [],
    listMb: [],
    floorS: [],
    floorEveryS: [],
    policy: noStart(),
    every: noStart(),
  };
  say(
    `loaded ${s.leases} lease4 rows in ${f.load.lease4.toFixed(1)} s, ${s.hosts} hosts rows (${s.mine} the monitor's) in ${f.load.hosts.toFixed(1)} s, ANALYZE ${f.load.analyze.toFixed(1)} s`,
  );
  for (let r = 0; r < RUNS; r++) {
    const plan = await timed(pg, dir, ['plan', '--json', '--use-database-events', ...POLICY, '--output-dir', join(dir, 'no-records')]);
    check('plan', plan, (x) =>
      x.leases === s.leases && x.unchanged === s.mine && x.not_selected === s.leases - s.mine ? null : 'not the expected actions',
    );
    f.planWall.push(plan.wall);
    f.planMb.push(plan.peakMb);
    say(`plan: ${plan.wall.toFixed(2)} s, peak RSS ${plan.peakMb.toFixed(1)} MB, ${plan.lines} lines`);
    const list = await timed(pg, dir, ['reservations', 'list', '--json', '--use-database-events']);
    check('reservations list', list, (x) => (x.reservations === s.mine && x.live === s.mine ? null : 'not the expected rows'));
    f.listWall.push(list.wall);
    f.listMb.push(list.peakMb);
    say(`reservations list --json: ${list.wall.toFixed(2)} s, peak RSS ${list.peakMb.toFixed(1)} MB, ${list.lines} lines`);
  }
  for (const every of [false, true]) {
    const into = every ? f.every : f.policy;
    for (let r = 0; r < RUNS; r++) {
      const st = await start(pg, dir, s, r, every);
      into.peakMb.push(st.peakMb);
      into.done.push(st.allDone);
      into.passS.push(agg(st.passes.map((p) => p.seconds)).median);
      into.passCpu.push(agg(st.passes.map((p) => p.cpu)).median);
      say(
        `daemon start, ${every ? 'every lease selected' : 'policy'}: all reserved and recorded ${st.allDone.toFixed(1)} s after spawn, peak RSS ${st.peakMb.toFixed(1)} MB; reconcile passes ${st.passes
          .map((p) => `${p.seconds.toFixed(2)} s (daemon CPU over the interval ${p.cpu.toFixed(2)} s)`)
          .join(', ')}`,
      );
      const floors = every ? f.floorEveryS : f.floorS;
      for (let i = 0; i < 3; i++) floors.push(await reconcileFloor(pg, every ? null : PREFILTER, st.recorded));
      say(`the pass's query alone, bare client: ${floors.map((x) => x.toFixed(2)).join(', ')} s`);
    }
  }
  return f;
}

async function main(): Promise<number> {
  if (!existsSync(MONITOR_BIN)) throw new Error(`${MONITOR_BIN} missing: run make build`);
  if (!existsSync(TIME)) throw new Error(`${TIME} missing: apt-get install time (scripts/install-deps.sh)`);
  const started = new Date();
  const dir = tempDir('lmk-bench-fleet-');
  const pg = await startPg(join(dir, 'pg'), { durable: true });
  await migrate(pg, true);
  // The binary's own floor, measured the same way: a process that only prints its version.
  const floors: number[] = [];
  for (let i = 0; i < 3; i++) floors.push((await timed(pg, dir, ['--version'])).peakMb);
  const floor = agg(floors).median;
  const shapes = SCALES.map(shape);
  const figs: Figures[] = [];
  for (const s of shapes) figs.push(await scale(pg, dir, s));
  const [small, big] = figs;
  const [S, B] = shapes;
  const med = (xs: number[]) => agg(xs).median;
  const rows: string[] = [];
  const row = (what: string, get: (f: Figures) => number[], unit: string, target = '', ok?: (x: number, growth: number) => boolean) => {
    const a = med(get(small));
    const b = med(get(big));
    const verdict = ok ? (ok(b, b / a) ? 'met' : '**missed**') : '';
    rows.push(`| ${what} (${unit}) | ${fmt(a)} | ${fmt(b)} | ${(b / a).toFixed(2)} | ${target} | ${verdict} |`);
  };
  row(
    '`plan`, wall time',
    (f) => f.planWall,
    's',
    '< 30 s',
    (x) => x < 30,
  );
  row(
    '`plan`, peak RSS',
    (f) => f.planMb,
    'MB',
    '< 300 MB',
    (x) => x < 300,
  );
  row(
    'reconcile pass with nothing to do',
    (f) => f.policy.passS,
    's',
    '< 2 s',
    (x) => x < 2,
  );
  row('reconcile pass: daemon CPU over the interval', (f) => f.policy.passCpu, 's');
  row("the pass's query alone, bare client (floor)", (f) => f.floorS, 's');
  row(
    '`reservations list --json`, peak RSS',
    (f) => f.listMb,
    'MB',
    'bounded: x10 fleet, peak x <= 1.25',
    (_x, g) => g <= 1.25,
  );
  row('`reservations list --json`, peak RSS above the floor', (f) => f.listMb.map((x) => x - floor), 'MB');
  row('`reservations list --json`, wall time', (f) => f.listWall, 's');
  const limit = `< ${REPLAY_LIMIT_MB} MB (1M-lease replay's limit)`;
  row(
    'daemon start on the backlog, peak RSS',
    (f) => f.policy.peakMb,
    'MB',
    limit,
    (x) => x < REPLAY_LIMIT_MB,
  );
  row('daemon start, spawn until every selected lease reserved and recorded', (f) => f.policy.done, 's');
  row(
    'daemon start, every lease selected: peak RSS',
    (f) => f.every.peakMb,
    'MB',
    limit,
    (x) => x < REPLAY_LIMIT_MB,
  );
  row('daemon start, every lease selected: spawn until all reserved and recorded', (f) => f.every.done, 's');
  row(
    'reconcile pass with nothing to do, every lease selected',
    (f) => f.every.passS,
    's',
    '< 2 s',
    (x) => x < 2,
  );
  row("the pass's query alone, every lease selected, bare client (floor)", (f) => f.floorEveryS, 's');
  row('load: lease4 INSERT ... SELECT', (f) => [f.load.lease4], 's');
  row('load: hosts INSERT ... SELECT', (f) => [f.load.hosts], 's');
  const k = (n: number) => `${(n / 1000).toLocaleString('en-US')}k`;
  const lines = [
    `## A fleet at ${k(S.leases)} and ${k(B.leases)} live leases (\`make bench-fleet${QUICK ? ' BENCH_ARGS="--quick"' : ''}\`)`,
    '',
    ...machine(),
    `- Date: ${started.toISOString()} (took ${Math.round((Date.now() - started.getTime()) / 1000)} s); ${RUNS} run${RUNS > 1 ? 's' : ''} per figure (the median of them), ${PASSES} reconcile passes per run`,
    '',
    `Per scale: N live leases in N/100 subnets, N/4 hosts rows of which N/20 the monitor's (the reservations of the`,
    `N/20 leases its policy, \`--allow-mac-prefix 02:aa\`, selects; the rest are operators' reservations of other`,
    `leased devices). ${S.leases.toLocaleString('en-US')}: ${S.subnets.toLocaleString('en-US')} subnets, ${S.hosts.toLocaleString('en-US')} hosts rows, ${S.mine.toLocaleString('en-US')} the monitor's; ${B.leases.toLocaleString('en-US')}: ${B.subnets.toLocaleString('en-US')} subnets, ${B.hosts.toLocaleString('en-US')} hosts rows, ${B.mine.toLocaleString('en-US')} the monitor's.`,
    '`plan --json` and `reservations list --json` (database mode) run under GNU time: peak RSS is its maximum RSS',
    "(VmHWM at exit). The daemon's start: the monitor's rows deleted, so its first catch-up reserves and records",
    `every selected lease (N/20) while it reads all N; peak RSS sampled every 50 ms and VmHWM. Then, in the same daemon`,
    `(\`--reconcile-interval ${RECONCILE_S}\`), passes with nothing to do: kea_lease_monitor_reconcile_seconds_total per pass`,
    "(median of the passes), the daemon's CPU between two pass ends, and the pass's own query read by a bare client. \"Every",
    'lease selected": the same start without the policy, so it reserves all N leases but the N/5 operators\' (left',
    'alone as foreign, and recorded), then its idle passes.',
    `The binary's floor (\`--version\` under GNU time): ${fmt(floor)} MB. Targets are judged at ${B.leases.toLocaleString('en-US')}.`,
    '',
    `| measurement (${RUNS === 1 ? 'one run' : `median of ${RUNS} runs`}) | ${k(S.leases)} | ${k(B.leases)} | ${k(B.leases)} / ${k(S.leases)} | target | |`,
    '|---|---:|---:|---:|---|---|',
    ...rows,
  ];
  const md = lines.join('\n');
  publishSection('bench-fleet', md);
  return 0;
}

runBench('bench-fleet', main);
