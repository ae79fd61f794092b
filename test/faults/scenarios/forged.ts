// A flood of forged notifications: any role that can connect can NOTIFY the monitor's channel. While the stream of
// real leases runs, a role without any privilege on lease4 sends 50,000 well-formed payloads for devices lease4 never
// held, each in a random subnet. Nothing may be reserved; metrics and memory must stay bounded; and each forged
// 'stale' outcome asks for a catch-up (at most one per 5 s), whose cost is measured here.
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { client, Pg, query } from '../../e2e/lib/pg';
import { sleep, waitFor } from '../../e2e/lib/proc';
import { peakRssMiB } from '../lib/monitor';
import { ScenarioSpec } from '../lib/scenario';

const FORGER = 'klm_forger';
const FLOOD_MS = 20_000;
const BASELINE_MS = 10_000;
const PER_TICK = 250;
const TICK_MS = 100;
// 172.16.0.0/12: apart from the stream's addresses (10.0.0.0/8), so only volume is tested here.
const FIRST_ADDRESS = 0xac100000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** CPU seconds used so far by the cluster's postmaster and every live child (backends, walwriter, ...). */
function clusterCpuSeconds(pg: Pg): number {
  const postmaster = Number(readFileSync(join(pg.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  let sum = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(d) === postmaster || Number(f[1]) === postmaster) sum += (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

const sumOf = (text: string, re: RegExp) => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);

/** Catch-up runs the monitor logged (debug) between two instants. */
function catchUps(lines: string[], from: number, to: number): number {
  return lines.filter((l) => {
    if (!/Catch-up found nothing to reserve|Caught up with leases committed/.test(l)) return false;
    const t = Date.parse((JSON.parse(l) as { timestamp?: string }).timestamp ?? '');
    return t >= from && t <= to;
  }).length;
}

let metricsPort = 0;

export const forgedFlood: ScenarioSpec = {
  name: 'flood of forged notifications',
  mode: 'db',
  timeoutMs: 120_000,
  async setup(pg) {
    await query(pg, `CREATE ROLE ${FORGER} LOGIN`);
    metricsPort = await freePort();
    return { metricsPort, logLevel: 'debug' };
  },
  async fault(ctx) {
    const pid = ctx.mon.proc.pid!;
    const forger = { ...ctx.pg, user: FORGER };
    const [{ lease4 }] = await query<{ lease4: boolean }>(forger, "SELECT has_table_privilege('lease4', 'SELECT') AS lease4");

    // The same stream without the flood, as a baseline.
    const b0 = Date.now();
    const cpuB0 = cpuSeconds(pid);
    const pgB0 = clusterCpuSeconds(ctx.pg);
    await sleep(BASELINE_MS);
    const b1 = Date.now();
    const baseCpu = (cpuSeconds(pid) - cpuB0) / ((b1 - b0) / 1000);
    const basePg = (clusterCpuSeconds(ctx.pg) - pgB0) / ((b1 - b0) / 1000);
    const rssBefore = rssMiB(pid);
    const textBefore = await scrape(metricsPort);
    const metricsBefore = textBefore.length;

    const c = client(forger, 'forger');
    await c.connect();
    let sent = 0;
    let rssPeak = rssBefore;
    const f0 = Date.now();
    const cpuF0 = cpuSeconds(pid);
    const pgF0 = clusterCpuSeconds(ctx.pg);
    try {
      while (Date.now() - f0 < FLOOD_MS) {
        const tick = Date.now();
        const expire = Math.floor(tick / 1000) + 3600;
        const payloads = Array.from({ length: PER_TICK }, (_, k) => {
          const n = sent + k;
          return JSON.stringify({
            v: 1,
            op: 'insert',
            address: FIRST_ADDRESS + n,
            hwaddr: `02fe${n.toString(16).padStart(8, '0')}`,
            subnet_id: 1 + Math.floor(Math.random() * 0xfffffffe),
            state: 0,
            valid_lifetime: 3600,
            expire,
            hostname: `forged-${n}`,
          });
        });
        await c.query('SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) AS p', ['kea_lease_events', payloads]);
        sent += PER_TICK;
        rssPeak = Math.max(rssPeak, rssMiB(pid));
        await sleep(Math.max(0, TICK_MS - (Date.now() - tick)));
      }
    } finally {
      await c.end();
    }
    const f1 = Date.now();
    const floodCpu = (cpuSeconds(pid) - cpuF0) / ((f1 - f0) / 1000);

    // Every forgery judged: stale, or dropped on a full queue (then a catch-up looks at lease4 instead).
    let text = '';
    let judged = 0;
    await waitFor(
      'every forged payload judged',
      async () => {
        text = await scrape(metricsPort);
        judged =
          sumOf(text, /^kea_lease_monitor_reservations_total\{result="stale"[^}]*\} (\d+)/gm) +
          sumOf(text, /^kea_lease_monitor_queue_overflows_total (\d+)/gm);
        rssPeak = Math.max(rssPeak, rssMiB(pid));
        return judged >= sent;
      },
      60_000,
      500,
    ).catch(() => undefined);
    const judgedAt = Date.now();
    // PostgreSQL's work from the flood's start until every forgery was judged (the forger's own backend has gone).
    const floodPg = (clusterCpuSeconds(ctx.pg) - pgF0) / ((judgedAt - f0) / 1000);
    const floodCpuAll = (cpuSeconds(pid) - cpuF0) / ((judgedAt - f0) / 1000);
    const overflows = sumOf(text, /^kea_lease_monitor_queue_overflows_total (\d+)/gm);
    const labels = new Set(
      [...text.matchAll(/^kea_lease_monitor_(?:reservations|leases_not_selected)_total\{[^}]*subnet_id="([^"]*)"/gm)].map((m) => m[1]),
    );
    const [{ n: forgedRows }] = await query<{ n: string }>(
      ctx.pg,
      "SELECT count(*) AS n FROM hosts WHERE substring(dhcp_identifier FROM 1 FOR 2) = '\\x02fe'::bytea",
    );
    const peak = Math.max(rssPeak, peakRssMiB(pid));
    const runsBase = catchUps(ctx.mon.lines, b0, b1);
    const runsFlood = catchUps(ctx.mon.lines, f0, judgedAt);
    const floodS = (judgedAt - f0) / 1000;
    const batchSum = /^kea_lease_monitor_batch_duration_seconds_sum (\S+)/m;
    const batchCount = /^kea_lease_monitor_batch_duration_seconds_count (\S+)/m;
    const delta = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN) - Number(re.exec(textBefore)?.[1] ?? NaN);
    const batches = delta(batchCount);
    const stale = sumOf(text, /^kea_lease_monitor_reservations_total\{result="stale"[^}]*\} (\d+)/gm);
    return {
      end: Date.now(),
      tailMs: 2000,
      checks: [
        { ok: lease4 === false, what: lease4 === false ? '' : 'the forger role can read lease4' },
        {
          ok: Number(forgedRows) === 0,
          what: `${sent.toLocaleString('en')} forged payloads in ${((f1 - f0) / 1000).toFixed(0)} s from a role without privilege on lease4: ${forgedRows} reservations created`,
        },
        {
          ok: judged >= sent,
          what: `${stale.toLocaleString('en')} judged stale, ${overflows.toLocaleString('en')} dropped on a full queue (real leases among them, caught up later); ${batches} batches of mean ${((delta(batchSum) / batches) * 1000).toFixed(0)} ms meanwhile`,
        },
        {
          ok: labels.size <= 3,
          what: `${labels.size} subnet_id label values (${[...labels].join(', ')}), /metrics ${metricsBefore} -> ${text.length} bytes`,
        },
        {
          ok: peak > 0 && peak < 200,
          what: `RSS ${rssBefore.toFixed(0)} MiB before the flood, peak ${peak.toFixed(0)} MiB (target < 200 MiB)`,
        },
        {
          // The stale outcomes' catch-ups: at most one per 5 s, whatever the flood's size.
          ok: runsFlood <= Math.ceil(floodS / 5) + 2,
          what: `catch-up cost: ${runsFlood} catch-ups in the ${floodS.toFixed(0)} s of flood and its processing (${runsBase} in the ${BASELINE_MS / 1000} s before); CPU s/s during the flood / until all judged / before: monitor ${floodCpu.toFixed(2)} / ${floodCpuAll.toFixed(2)} / ${baseCpu.toFixed(2)}, PostgreSQL (until all judged / before) ${floodPg.toFixed(2)} / ${basePg.toFixed(2)}`,
        },
      ],
    };
  },
};
