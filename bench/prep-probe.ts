// What preparing the write once per connection buys: the same call of kea_lm_write_reservations, one lease per call
// (what 2,000/s batches mostly hold), as an unnamed statement (parsed and planned every call) and as the monitor's
// named one, beside the floor's bare upsert, on one connection. Prints client CPU (this process) and server CPU
// (the backend's utime + stime from /proc) per call; rounds alternate so the machine's drift hits all three.
// Usage (after make build): node --import tsx bench/prep-probe.ts [--calls 4000] [--rounds 3]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'pg';
import { CALL_NAME, CALL_TEXT, callValues } from '../src/db/reservation-call';
import type { Lease } from '../src/lease';
import { migrate } from '../test/e2e/lib/monitor';
import { client, startPg } from '../test/e2e/lib/pg';
import { runCleanups, tempDir } from '../test/e2e/lib/proc';
import { agg } from './lib/stats';
import { FLOOR_UPSERT } from './lib/floor-upsert';
import { benchArgs } from './lib/args';

const args = benchArgs(
  'bench/prep-probe.ts',
  'The write call one lease at a time, unnamed and prepared, beside the bare upsert: CPU per call.',
  {
    calls: { type: 'string', count: true, help: 'calls per statement and round (default 4000)' },
    rounds: { type: 'string', count: true, help: 'rounds, the statements alternating (default 3)' },
  },
);
const CALLS = Number(args.calls ?? '4000');
const ROUNDS = Number(args.rounds ?? '3');

function cpuOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks of 10 ms
}

let k = 1;
function nextLease(): Lease {
  const n = k++;
  return {
    address: 0x0a000000 + n,
    hwaddr: Buffer.from(n.toString(16).padStart(12, '0'), 'hex'),
    subnetId: 1,
    hostname: `probe-${n}`,
    source: 'database',
  };
}

type Kind = 'unnamed' | 'named' | 'floor upsert';

async function oneCall(c: Client, kind: Kind): Promise<void> {
  const lease = nextLease();
  if (kind === 'floor upsert') {
    await c.query(FLOOR_UPSERT, [[lease.hwaddr.toString('hex')], [lease.subnetId], [lease.address], [lease.hostname], '{}']);
    return;
  }
  const values = callValues([{ lease, idx: 0 }], { mode: 'upsert', maxPerSubnet: null, durable: false });
  await c.query({ text: CALL_TEXT, ...(kind === 'named' ? { name: CALL_NAME } : {}), values });
}

async function main() {
  const pg = await startPg(join(tempDir('lmk-prep-'), 'pg'));
  await migrate(pg, true);
  const c = client(pg, 'bench-prep-probe');
  await c.connect();
  await c.query('SET synchronous_commit = off'); // the floor's upsert as the monitor commits (database mode)
  const backend = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  const kinds: Kind[] = ['unnamed', 'named', 'floor upsert'];
  for (const kind of kinds) for (let i = 0; i < 200; i++) await oneCall(c, kind); // JIT and caches warm
  const client_: Record<Kind, number[]> = { unnamed: [], named: [], 'floor upsert': [] };
  const server: Record<Kind, number[]> = { unnamed: [], named: [], 'floor upsert': [] };
  for (let r = 0; r < ROUNDS; r++)
    for (const kind of kinds) {
      const cpu0 = process.cpuUsage();
      const b0 = cpuOf(backend);
      for (let i = 0; i < CALLS; i++) await oneCall(c, kind);
      const cu = process.cpuUsage(cpu0);
      client_[kind].push((cu.user + cu.system) / CALLS);
      server[kind].push(((cpuOf(backend) - b0) * 1e6) / CALLS);
    }
  await c.end();
  process.stdout.write(`${CALLS.toLocaleString('en-US')} calls x ${ROUNDS} rounds, one lease per call; µs per call, median (min-max)\n`);
  process.stdout.write('| statement | server CPU | client CPU |\n|---|---:|---:|\n');
  const fmt = (xs: number[]) => {
    const a = agg(xs);
    return `${a.median.toFixed(0)} (${a.min.toFixed(0)}-${a.max.toFixed(0)})`;
  };
  for (const kind of kinds) process.stdout.write(`| ${kind} | ${fmt(server[kind])} | ${fmt(client_[kind])} |\n`);
  await runCleanups();
}

main().catch(async (e) => {
  process.stderr.write(`prep-probe: ${(e as Error).message}\n`);
  await runCleanups();
  process.exit(1);
});
