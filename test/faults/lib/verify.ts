// Counting what a fault cost: leases lost (a live lease whose MAC has no reservation for that address,
// or one for another address: a stale move counts as lost) and reservations doubled (two rows for one
// MAC and subnet, or two reservations for one address).
import { Pg, query } from '../../e2e/lib/pg';
import { sleep } from '../../e2e/lib/proc';
import type { Lease } from './stream';

export interface Count {
  leases: number;
  lost: number;
  doubled: number;
  detail: string;
}

/** Live leases in lease4: database mode's truth. */
export async function liveLeases(pg: Pg): Promise<Lease[]> {
  const rows = await query<{ mac: string; ip: string; subnet: string }>(
    pg,
    `SELECT encode(hwaddr, 'hex') AS mac, host('0.0.0.0'::inet + address) AS ip, subnet_id::text AS subnet
       FROM lease4 WHERE state = 0 AND expire > now() AND valid_lifetime > 0`,
  );
  return rows.map((r) => ({ mac: r.mac, ip: r.ip, subnet: Number(r.subnet) }));
}

/** A run of the stream's deterministic leases (n-th: MAC 02:00 + n+1 as 4 bytes, address 10.0.0.0 + n + 10). */
export interface LeaseRange {
  from: number;
  to: number;
}

// Counted in PostgreSQL, so that a million leases cost one statement and no client memory.
const COUNT_SQL = `
WITH e AS (
  SELECT decode(mac, 'hex') AS mac, ip, subnet FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS t(mac, ip, subnet)
  UNION ALL
  SELECT '\\x0200'::bytea || int4send((n + 1)::int), 167772160 + n + 10, 1 FROM generate_series($4::bigint, $5::bigint - 1) n
),
judged AS (
  SELECT e.mac, e.ip,
         EXISTS (SELECT 1 FROM hosts h WHERE h.dhcp_identifier = e.mac AND h.dhcp_identifier_type = 0 AND h.dhcp4_subnet_id = e.subnet) AS has_row,
         EXISTS (SELECT 1 FROM hosts h WHERE h.dhcp_identifier = e.mac AND h.dhcp_identifier_type = 0 AND h.dhcp4_subnet_id = e.subnet
                   AND h.ipv4_address = e.ip) AS right_ip
    FROM e
)
SELECT (SELECT count(*) FROM e)::int AS leases,
       (SELECT count(*) FROM judged WHERE NOT has_row)::int AS missing,
       (SELECT count(*) FROM judged WHERE has_row AND NOT right_ip)::int AS wrong,
       (SELECT string_agg(encode(mac, 'hex') || ' ' || host('0.0.0.0'::inet + ip), '; ')
          FROM (SELECT * FROM judged WHERE NOT right_ip LIMIT 2) x) AS sample,
       (SELECT count(*) FROM (SELECT 1 FROM hosts WHERE dhcp_identifier_type = 0 GROUP BY dhcp_identifier, dhcp4_subnet_id HAVING count(*) > 1) d)::int AS dup_macs,
       (SELECT count(*) FROM (SELECT 1 FROM hosts WHERE ipv4_address IS NOT NULL GROUP BY ipv4_address, dhcp4_subnet_id HAVING count(*) > 1) d)::int AS dup_ips`;

export async function count(pg: Pg, expected: Lease[], range: LeaseRange = { from: 0, to: 0 }): Promise<Count> {
  const [r] = await query<{ leases: number; missing: number; wrong: number; sample: string | null; dup_macs: number; dup_ips: number }>(
    pg,
    COUNT_SQL,
    [
      expected.map((l) => l.mac.replace(/[:-]/g, '')),
      expected.map((l) => l.ip.split('.').reduce((a, o) => a * 256 + Number(o), 0)),
      expected.map((l) => l.subnet),
      range.from,
      range.to,
    ],
  );
  const parts: string[] = [];
  if (r.missing) parts.push(`${r.missing} without a reservation`);
  if (r.wrong) parts.push(`${r.wrong} reserved at another address`);
  if (r.sample) parts.push(`e.g. ${r.sample}`);
  if (r.dup_macs) parts.push(`${r.dup_macs} MACs reserved twice`);
  if (r.dup_ips) parts.push(`${r.dup_ips} addresses reserved twice`);
  return { leases: r.leases, lost: r.missing + r.wrong, doubled: r.dup_macs + r.dup_ips, detail: parts.join(', ') };
}

export interface Converged extends Count {
  /** Seconds from `since` until nothing was lost; null if that never happened within the timeout. */
  recovery: number | null;
}

/**
 * Polls until every expected lease is reserved (or the timeout passes), then counts once more a
 * second later, so a late duplicate still shows.
 */
export async function converge(
  pg: Pg,
  expected: () => Promise<Lease[]> | Lease[],
  since: number,
  timeoutMs = 90_000,
  range?: LeaseRange,
): Promise<Converged> {
  const end = Date.now() + timeoutMs;
  let recovery: number | null = null;
  for (;;) {
    try {
      const c = await count(pg, await expected(), range);
      if (c.lost === 0) {
        recovery = (Date.now() - since) / 1000;
        break;
      }
    } catch {
      /* the database may still be coming back */
    }
    if (Date.now() > end) break;
    await sleep(250);
  }
  await sleep(1000);
  return { ...(await count(pg, await expected(), range)), recovery };
}
