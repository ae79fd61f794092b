// Synthetic lease writers that write the way Kea 2.2 does: one lease4 row per transaction (or a memfile row per
// write), every client a new MAC and a new address.
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { Client } from 'pg';
import { client, Pg } from '../../test/e2e/lib/pg';
import { now, sleep } from '../../test/e2e/lib/proc';

const ADDR_BASE = (10 << 24) | (100 << 16); // 10.100.0.0: far from the e2e pool, unique per lease
let counter = 1; // process-wide: every lease a benchmark writes has its own MAC and address

export interface Lease {
  mac: string;
  addr: number;
  hostname: string;
}

export function nextLease(): Lease {
  return leaseFor(counter++);
}

function leaseFor(c: number): Lease {
  const hex = c.toString(16).padStart(8, '0');
  return { mac: `02:00:${hex.match(/../g)!.join(':')}`, addr: ADDR_BASE + c, hostname: `bench-${hex}` };
}
export const macKey = (mac: string) => mac.replace(/:/g, '-');
export const ipOf = (a: number) => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.');

const INSERT_SQL = `INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state, user_context)
  VALUES ($1, $2, $3, 3600, now() + interval '3600 seconds', 1, false, false, $4, 0, NULL)`;

async function connectMany(pg: Pg, n: number, warmUp = true): Promise<Client[]> {
  const cs = Array.from({ length: n }, () => client(pg, 'bench-writer'));
  await Promise.all(cs.map((c) => c.connect()));
  if (!warmUp) return cs;
  // Kea's own lease4 trigger creates its lease4_stat row with UPDATE-then-INSERT, which races between concurrent
  // first inserts (duplicate key on lease4_stat_pkey); Kea itself never hits it. One serial insert first avoids it.
  await insertOne(cs[0], nextLease());
  return cs;
}

async function insertOne(c: Client, l: Lease): Promise<void> {
  const hw = Buffer.from(l.mac.replace(/:/g, ''), 'hex');
  await c.query({ name: 'kea_insert_lease4', text: INSERT_SQL, values: [l.addr, hw, Buffer.concat([Buffer.from([1]), hw]), l.hostname] });
}

export interface Sent {
  sent: Map<string, number>;
  seconds: number;
  rate: number;
  leases: Lease[];
}

// The steady writer runs inside PostgreSQL (a procedure that COMMITs after every lease), so that generating
// 2,000 transactions/s costs no client CPU on this 2-core machine; each lease's commit-side time is stamped in the
// same transaction (clock_timestamp() before COMMIT: latency is over-, never under-estimated).
const STEADY_PROC = `
CREATE UNLOGGED TABLE IF NOT EXISTS bench_t0 (c bigint PRIMARY KEY, ts double precision);
CREATE OR REPLACE PROCEDURE bench_steady(p_w int, p_workers int, p_total int, p_c0 bigint, p_rate float8, p_start float8)
LANGUAGE plpgsql AS $$
DECLARE k int := p_w; c bigint; due float8; t float8; hex text;
BEGIN
  WHILE k < p_total LOOP
    due := p_start + k / p_rate;
    t := extract(epoch from clock_timestamp());
    IF due > t + 0.0005 THEN PERFORM pg_sleep(due - t); END IF;
    c := p_c0 + k;
    hex := lpad(to_hex(c), 8, '0');
    INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state, user_context)
      VALUES (${ADDR_BASE} + c, decode('0200' || hex, 'hex'), decode('010200' || hex, 'hex'), 3600, now() + interval '3600 seconds',
              1, false, false, 'bench-' || hex, 0, NULL);
    INSERT INTO bench_t0 VALUES (c, extract(epoch from clock_timestamp()) * 1000);
    COMMIT;
    k := k + p_workers;
  END LOOP;
END $$;`;

/** Steady rate, one lease per transaction, from `workers` server-side loops. Stamps each lease's commit time. */
export async function steadyDb(pg: Pg, rate: number, seconds: number, workers = 1): Promise<Sent> {
  const cs = await connectMany(pg, workers);
  await cs[0].query(STEADY_PROC);
  const total = Math.round(rate * seconds);
  const c0 = counter;
  counter += total;
  const leases = Array.from({ length: total }, (_, k) => leaseFor(c0 + k));
  const start = (Date.now() + 50) / 1000;
  await Promise.all(cs.map((c, w) => c.query('CALL bench_steady($1, $2, $3, $4, $5, $6)', [w, workers, total, c0, rate, start])));
  const secs = Date.now() / 1000 - start;
  const stamps = await cs[0].query<{ c: string; ts: number }>('SELECT c::text, ts FROM bench_t0 WHERE c >= $1 AND c < $2', [
    c0,
    c0 + total,
  ]);
  await Promise.all(cs.map((c) => c.end()));
  const sent = new Map(stamps.rows.map((r) => [macKey(leaseFor(Number(r.c)).mac), Number(r.ts)]));
  return { sent, seconds: secs, rate: total / secs, leases };
}

/** n leases in one INSERT ... SELECT (one transaction). Returns send and commit times. */
export async function burstOneTxn(pg: Pg, n: number): Promise<{ t0: number; tCommit: number; leases: Lease[] }> {
  const leases = Array.from({ length: n }, nextLease);
  const first = leases[0];
  const c = client(pg, 'bench-writer');
  await c.connect();
  const firstCounter = first.addr - ADDR_BASE;
  const t0 = now();
  await c.query(
    `INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state, user_context)
     SELECT $1::bigint + g, decode('0200' || lpad(to_hex($2::int + g), 8, '0'), 'hex'), decode('010200' || lpad(to_hex($2::int + g), 8, '0'), 'hex'),
            3600, now() + interval '3600 seconds', 1, false, false, 'bench-' || lpad(to_hex($2::int + g), 8, '0'), 0, NULL
       FROM generate_series(0, $3::int - 1) g`,
    [ADDR_BASE + firstCounter, firstCounter, n],
  );
  const tCommit = now();
  await c.end();
  return { t0, tCommit, leases };
}

/** n leases, one per transaction, back to back from one server-side loop (Kea, too, commits one lease at a time). */
export async function burstManyTxns(pg: Pg, n: number): Promise<{ t0: number; tDone: number; leases: Lease[] }> {
  const t0 = now();
  const s = await steadyDb(pg, 1e9, n / 1e9);
  return { t0, tDone: now(), leases: s.leases };
}

/** Renews existing leases the way Kea does on a REQUEST: an UPDATE of expire, one per transaction. */
export async function renewAll(pg: Pg, leases: Lease[], conns = 8): Promise<void> {
  const cs = await connectMany(pg, conns, false);
  let i = 0;
  await Promise.all(
    cs.map(async (c) => {
      for (let k = i++; k < leases.length; k = i++)
        await c.query({
          name: 'kea_update_lease4',
          text: "UPDATE lease4 SET expire = expire + interval '600 seconds', valid_lifetime = 3600 WHERE address = $1",
          values: [leases[k].addr],
        });
    }),
  );
  await Promise.all(cs.map((c) => c.end()));
}

export const CSV_HEADER = 'address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n';

export function csvRow(l: Lease): string {
  const expire = Math.floor(Date.now() / 1000) + 3600;
  return `${ipOf(l.addr)},${l.mac},01:${l.mac},3600,${expire},1,0,0,${l.hostname},0,\n`;
}

/** Steady rate of memfile rows, each one write(2) without fsync, as Kea's memfile backend does. */
export async function steadyCsv(file: string, rate: number, seconds: number): Promise<Sent> {
  const fresh = !existsSync(file);
  const fd = openSync(file, 'a');
  if (fresh) writeSync(fd, CSV_HEADER);
  const total = Math.round(rate * seconds);
  const leases = Array.from({ length: total }, nextLease);
  const sent = new Map<string, number>();
  const start = now() + 20;
  let k = 0;
  while (k < total) {
    const t = now();
    while (k < total && start + (k * 1000) / rate <= t) {
      const l = leases[k++];
      sent.set(macKey(l.mac), now());
      writeSync(fd, csvRow(l));
    }
    const wait = start + (k * 1000) / rate - now();
    await sleep(Math.max(0, Math.min(wait, 5)));
  }
  closeSync(fd);
  const secs = (now() - start) / 1000;
  return { sent, seconds: secs, rate: total / secs, leases };
}

/** n memfile rows appended at once. */
export function burstCsv(file: string, n: number): { t0: number; leases: Lease[] } {
  const fresh = !existsSync(file);
  const fd = openSync(file, 'a');
  if (fresh) writeSync(fd, CSV_HEADER);
  const leases = Array.from({ length: n }, nextLease);
  const t0 = now();
  for (const l of leases) writeSync(fd, csvRow(l));
  closeSync(fd);
  return { t0, leases };
}

/**
 * The database's own limit for a burst: the same leases' reservations as one plain INSERT ... ON CONFLICT straight
 * into hosts (no lease4 read, no ownership check, no advisory lock), into an emptied hosts table (TRUNCATE: a fresh
 * relation, as on a fresh cluster). Timed from the statement's start to its commit.
 */
export async function rawUpsert(pg: Pg, leases: Lease[]): Promise<{ ms: number; rate: number }> {
  const c = client(pg, 'bench-raw-upsert');
  await c.connect();
  try {
    await c.query('TRUNCATE hosts CASCADE');
    const first = leases[0].addr - ADDR_BASE;
    const mark = JSON.stringify({ 'kea-lease-monitor': { created: new Date().toISOString(), source: 'database' } });
    const t0 = now();
    await c.query(
      `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
       SELECT decode('0200' || lpad(to_hex($2::int + g), 8, '0'), 'hex'), 0, 1, $1::bigint + g, 'bench-' || lpad(to_hex($2::int + g), 8, '0'), $4
         FROM generate_series(0, $3::int - 1) g
       ON CONFLICT (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id) WHERE dhcp4_subnet_id IS NOT NULL
       DO UPDATE SET ipv4_address = EXCLUDED.ipv4_address, hostname = EXCLUDED.hostname`,
      [ADDR_BASE + first, first, leases.length, mark],
    );
    const ms = now() - t0;
    return { ms, rate: leases.length / (ms / 1000) };
  } finally {
    await c.end();
  }
}

/**
 * Empties lease4 (with Kea's lease4_stat) and hosts before a measurement. A monitor that starts reconciles every live
 * lease against its (fresh) output directory, so leases left by earlier runs, or by a minimal-listener run that never
 * reserved them, would be re-recorded or reserved during the next measurement and counted against it.
 */
export async function freshTables(pg: Pg): Promise<void> {
  const c = client(pg, 'bench-reset');
  await c.connect();
  try {
    const extra = await c.query<{ t: string }>(
      "SELECT t FROM unnest(ARRAY['lease4_stat', 'lease4_stat_by_client_class']) t WHERE to_regclass(t) IS NOT NULL",
    );
    await c.query(`TRUNCATE ${['lease4', ...extra.rows.map((r) => r.t), 'hosts'].join(', ')} CASCADE`);
  } finally {
    await c.end();
  }
}
