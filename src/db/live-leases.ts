import type { QueryResultRow } from 'pg';
import { Lease, sanitizeHostname } from '../lease';

/** Anything that runs one statement with bound parameters: a pooled Database, a client. */
export interface Queryable {
  query<R extends QueryResultRow>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

// The same predicate the SQL writer's statement applies (db/reservations.ts): lease4 holds this
// exact live lease. lease4's primary key is the address, so each input matches at most one row.
const LIVE_SQL = `
SELECT i.idx, l.hostname
  FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::int[]) AS i(mac, subnet_id, ip, idx)
  JOIN lease4 l ON l.address = i.ip AND l.hwaddr = i.mac AND l.subnet_id = i.subnet_id
 WHERE l.state = 0 AND l.expire > now() AND l.valid_lifetime > 0`;

/**
 * A NOTIFY payload proves nothing (any role that can connect can send one): looks up each lease in
 * lease4, in one statement with bound parameters. Returns, per input index, the lease as it may be
 * written, or null when lease4 holds no such live lease (expired since, moved, or never there: a
 * forgery). Its hostname is lease4's (sanitised as lease.ts does), never the payload's: a forged
 * rename reaches neither the reservation nor the discovery record.
 */
export async function confirmLiveLeases(db: Queryable, leases: readonly Lease[]): Promise<(Lease | null)[]> {
  const out: (Lease | null)[] = leases.map(() => null);
  if (leases.length === 0) return out;
  const { rows } = await db.query<{ idx: number; hostname: string | null }>(LIVE_SQL, [
    leases.map((l) => l.hwaddr),
    leases.map((l) => l.subnetId),
    leases.map((l) => l.address),
    leases.map((_, i) => i),
  ]);
  for (const r of rows) {
    const lease = leases[r.idx];
    if (lease === undefined || out[r.idx] !== null) continue;
    const hostname = sanitizeHostname(r.hostname);
    out[r.idx] = hostname === lease.hostname ? lease : { ...lease, hostname };
  }
  return out;
}
