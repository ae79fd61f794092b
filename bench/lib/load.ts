// Synthetic lease writers that write the way Kea 2.2 does: one lease4 row per transaction (or a memfile row per
// write), every client a new MAC and a new address.
import { closeSync, existsSync, openSync, writeSync } from "node:fs";
import { Client } from "pg";
import { client, Pg } from "../../test/e2e/lib/pg";
import { now, sleep } from "../../test/e2e/lib/proc";

const ADDR_BASE = (10 << 24) | (100 << 16); // 10.100.0.0: far from the e2e pool, unique per lease
let counter = 1; // process-wide: every lease a benchmark writes has its own MAC and address

export interface Lease { mac: string; addr: number; hostname: string }

export function nextLease(): Lease {
  const c = counter++;
  const hex = c.toString(16).padStart(8, "0");
  return { mac: `02:00:${hex.match(/../g)!.join(":")}`, addr: ADDR_BASE + c, hostname: `bench-${hex}` };
}
export const macKey = (mac: string) => mac.replace(/:/g, "-");
export const ipOf = (a: number) => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join(".");

const INSERT_SQL = `INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state, user_context)
  VALUES ($1, $2, $3, 3600, now() + interval '3600 seconds', 1, false, false, $4, 0, NULL)`;

async function connectMany(pg: Pg, n: number): Promise<Client[]> {
  const cs = Array.from({ length: n }, () => client(pg, "bench-writer"));
  await Promise.all(cs.map((c) => c.connect()));
  return cs;
}

async function insertOne(c: Client, l: Lease): Promise<void> {
  const hw = Buffer.from(l.mac.replace(/:/g, ""), "hex");
  await c.query({ name: "kea_insert_lease4", text: INSERT_SQL, values: [l.addr, hw, Buffer.concat([Buffer.from([1]), hw]), l.hostname] });
}

export interface Sent { sent: Map<string, number>; seconds: number; rate: number; leases: Lease[] }

/** Steady rate, one lease per autocommit transaction over `conns` connections. Stamps each send time. */
export async function steadyDb(pg: Pg, rate: number, seconds: number, conns = 4): Promise<Sent> {
  const cs = await connectMany(pg, conns);
  const total = Math.round(rate * seconds);
  const leases = Array.from({ length: total }, nextLease);
  const sent = new Map<string, number>();
  const start = now() + 20;
  let i = 0;
  await Promise.all(
    cs.map(async (c) => {
      for (let k = i++; k < total; k = i++) {
        const due = start + (k * 1000) / rate;
        const wait = due - now();
        if (wait > 1) await sleep(wait);
        const l = leases[k]!;
        sent.set(macKey(l.mac), now());
        await insertOne(c, l);
      }
    }),
  );
  const secs = (now() - start) / 1000;
  await Promise.all(cs.map((c) => c.end()));
  return { sent, seconds: secs, rate: total / secs, leases };
}

/** n leases in one INSERT ... SELECT (one transaction). Returns send and commit times. */
export async function burstOneTxn(pg: Pg, n: number): Promise<{ t0: number; tCommit: number; leases: Lease[] }> {
  const leases = Array.from({ length: n }, nextLease);
  const first = leases[0]!;
  const c = client(pg, "bench-writer");
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

/** n leases, one per transaction, as fast as `conns` connections go. */
export async function burstManyTxns(pg: Pg, n: number, conns = 8): Promise<{ t0: number; tDone: number; leases: Lease[] }> {
  const cs = await connectMany(pg, conns);
  const leases = Array.from({ length: n }, nextLease);
  let i = 0;
  const t0 = now();
  await Promise.all(cs.map(async (c) => { for (let k = i++; k < n; k = i++) await insertOne(c, leases[k]!); }));
  const tDone = now();
  await Promise.all(cs.map((c) => c.end()));
  return { t0, tDone, leases };
}

/** Renews existing leases the way Kea does on a REQUEST: an UPDATE of expire, one per transaction. */
export async function renewAll(pg: Pg, leases: Lease[], conns = 8): Promise<void> {
  const cs = await connectMany(pg, conns);
  let i = 0;
  await Promise.all(
    cs.map(async (c) => {
      for (let k = i++; k < leases.length; k = i++)
        await c.query({ name: "kea_update_lease4", text: "UPDATE lease4 SET expire = expire + interval '600 seconds', valid_lifetime = 3600 WHERE address = $1", values: [leases[k]!.addr] });
    }),
  );
  await Promise.all(cs.map((c) => c.end()));
}

export const CSV_HEADER = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n";

export function csvRow(l: Lease): string {
  const expire = Math.floor(Date.now() / 1000) + 3600;
  return `${ipOf(l.addr)},${l.mac},01:${l.mac},3600,${expire},1,0,0,${l.hostname},0,\n`;
}

/** Steady rate of memfile rows, each one write(2) without fsync, as Kea's memfile backend does. */
export async function steadyCsv(file: string, rate: number, seconds: number): Promise<Sent> {
  const fresh = !existsSync(file);
  const fd = openSync(file, "a");
  if (fresh) writeSync(fd, CSV_HEADER);
  const total = Math.round(rate * seconds);
  const leases = Array.from({ length: total }, nextLease);
  const sent = new Map<string, number>();
  const start = now() + 20;
  let k = 0;
  while (k < total) {
    const t = now();
    while (k < total && start + (k * 1000) / rate <= t) {
      const l = leases[k++]!;
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
  const fd = openSync(file, "a");
  if (fresh) writeSync(fd, CSV_HEADER);
  const leases = Array.from({ length: n }, nextLease);
  const t0 = now();
  for (const l of leases) writeSync(fd, csvRow(l));
  closeSync(fd);
  return { t0, leases };
}
