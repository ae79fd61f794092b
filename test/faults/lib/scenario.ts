// The shape every scenario shares: a cluster with the real Kea schema, the built monitor, a stream of
// leases, one fault, then a count of what was lost or doubled and how long recovery took.
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from '../../e2e/lib/monitor';
import { cleanupMark, now, runCleanups, sleep, tempDir } from '../../e2e/lib/proc';
import { Cluster, startCluster } from './cluster';
import { alive, launch, Launch, Monitor, tail } from './monitor';
import { record, Row } from './report';
import { DbStream, FileStream, Lease } from './stream';
import { converge, LeaseRange, liveLeases } from './verify';

const LOG_DIR = join(tmpdir(), 'klm-faults-logs');

export const LISTENING = /Listening for database lease events/;

export interface Ctx {
  pg: Cluster;
  dir: string;
  outputDir: string;
  mon: Monitor;
  stream: DbStream | FileStream;
  /** Starts the monitor again with the scenario's settings. */
  relaunch(over?: Partial<Launch>): Monitor;
  notes: string[];
}

export interface FaultResult {
  /** When the fault ended (ms, wall clock); recovery counts from here. */
  end: number;
  /** Extra pass conditions, each with what it saw. */
  checks?: { ok: boolean; what: string }[];
  /** Keep the stream running this long after the fault before stopping it. */
  tailMs?: number;
  /** Leases written outside the stream's own list (a burst), counted in PostgreSQL. */
  range?: LeaseRange;
}

export interface ScenarioSpec {
  name: string;
  mode: 'db' | 'file';
  rate?: number;
  /** Stream this long before the fault. */
  warmMs?: number;
  timeoutMs?: number;
  launch?: Partial<Launch>;
  /** Runs before the monitor starts (e.g. roles, mounts, network). */
  setup?: (pg: Cluster, dir: string) => Promise<Partial<Launch> | void>;
  fault(ctx: Ctx): Promise<FaultResult>;
  /** More pass conditions, checked once the reservations have converged. */
  after?: (ctx: Ctx) => Promise<{ ok: boolean; what: string }[]>;
  /** The monitor may have exited on purpose (e.g. missing privilege). */
  exitExpected?: boolean;
}

let base = 0;

export async function runScenario(spec: ScenarioSpec): Promise<Row> {
  const mark = cleanupMark();
  const notes: string[] = [];
  const t0 = Date.now();
  let row: Row;
  try {
    const pg = await startCluster(spec.name.replace(/\W+/g, '-').slice(0, 20));
    const dir = tempDir('klm-faults-run-');
    const outputDir = join(dir, 'discovery');
    if (spec.mode === 'db') await migrate(pg, true);
    else await migrate(pg, false);
    const extra = (await spec.setup?.(pg, dir)) ?? {};
    const leaseFile = join(dir, 'kea-leases4.csv');
    base += 1_000_000;
    const stream = spec.mode === 'db' ? new DbStream(pg, base, spec.rate ?? 200) : new FileStream(leaseFile, base, spec.rate ?? 200);
    const settings: Launch = { pg, mode: spec.mode, outputDir, leaseFile, ...spec.launch, ...extra };
    const ctx: Ctx = {
      pg,
      dir,
      outputDir,
      stream,
      notes,
      mon: launch(settings),
      relaunch: (over = {}) => (ctx.mon = launch({ ...settings, ...over })),
    };
    if (spec.mode === 'db') await ctx.mon.waitLog(LISTENING, 20_000);
    else await sleep(1000);
    stream.start();
    await sleep(spec.warmMs ?? 4000);
    const f = await spec.fault(ctx);
    if (f.tailMs) await sleep(f.tailMs);
    await stream.stop();
    // Recovery counts from the later of the fault's end and the last lease written.
    const since = Math.max(f.end, Date.now());
    const expected = (): Promise<Lease[]> | Lease[] => (spec.mode === 'db' ? liveLeases(pg) : stream.expected());
    const c = await converge(pg, expected, since, spec.timeoutMs ?? 90_000, f.range);
    const checks = [...(f.checks ?? []), ...((await spec.after?.(ctx)) ?? [])];
    if (!spec.exitExpected)
      checks.push({
        ok: alive(ctx.mon),
        what: alive(ctx.mon) ? '' : `monitor exited (${ctx.mon.proc.exitCode ?? ctx.mon.proc.signalCode}): ${tail(ctx.mon)}`,
      });
    const failedChecks = checks.filter((x) => !x.ok).map((x) => x.what);
    const pass = c.lost === 0 && c.doubled === 0 && c.recovery !== null && failedChecks.length === 0;
    if (c.recovery === null) notes.push(`not recovered within ${(spec.timeoutMs ?? 90_000) / 1000} s`);
    if (c.detail) notes.push(c.detail);
    if (!pass && alive(ctx.mon) && c.lost > 0) notes.push(`monitor log: ${tail(ctx.mon)}`);
    notes.push(...failedChecks.filter(Boolean));
    notes.push(...checks.filter((x) => x.ok && x.what).map((x) => x.what));
    if (spec.mode === 'db') notes.push(`${stream.moves} moves`);
    else notes.push(`${(stream as FileStream).cleanups} lease-file cleanups, ${stream.moves} moves`);
    if (alive(ctx.mon)) await ctx.mon.stop();
    // The last monitor's log, for a look after a FAIL or a slow recovery.
    mkdirSync(LOG_DIR, { recursive: true });
    writeFileSync(join(LOG_DIR, `${spec.name.replace(/\W+/g, '-').slice(0, 60)}.log`), ctx.mon.lines.join('\n') + '\n');
    notes.push(`scenario took ${Math.round((Date.now() - t0) / 1000)} s`);
    row = { name: spec.name, leases: c.leases, lost: c.lost, doubled: c.doubled, recovery: c.recovery, notes: notes.join('; '), pass };
  } catch (e) {
    row = {
      name: spec.name,
      leases: 0,
      lost: 0,
      doubled: 0,
      recovery: null,
      notes: `scenario error: ${(e as Error).message.split('\n')[0].slice(0, 300)}`,
      pass: false,
    };
  } finally {
    await runCleanups(mark);
  }
  return record(row);
}

/** Seconds between two wall-clock instants, one decimal. */
export const secs = (from: number, to = now()) => Math.round((to - from) / 100) / 10;
