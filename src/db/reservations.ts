import type { ClientBase } from 'pg';
import type { Lease } from '../lease';

// superseded: a later lease in the same batch took the address, so this one is no longer held.
// failed: PostgreSQL refused this lease for good (isolated from its batch, logged, counted).
export type ReservationOutcome = 'created' | 'updated' | 'unchanged' | 'conflict' | 'superseded' | 'failed';

export interface ReservationResult {
  lease: Lease;
  outcome: ReservationOutcome;
  /** The reservation's host_id; for a conflict, the host holding the address. */
  hostId: number | null;
}

export type WritePath = 'upsert' | 'fallback';

/** The HA fence was closed: this process is no longer the active monitor; nothing was written. */
export class FencedError extends Error {
  override name = 'FencedError';
}

// hw-address, in Kea's host_identifier_type table.
const HW_ADDRESS = 0;
// Serialises reservation writers (several monitors on one database) so the IP-conflict check holds.
const WRITER_LOCK = 0x4b4c4e;

// "+ 0" keeps the planner off fk_host_identifier_type (where every row has type 0) when hosts has
// no statistics yet, as after a burst; see sources/catch-up.ts.
// Shared head of both statements: each input row with its own reservation (same identifier and
// subnet) and any *other* host already holding the address in that subnet. `todo` keeps only rows
// that would change something, so renewals and our own echoes never reach INSERT and never draw
// a host_id from the sequence.
const CLASSIFY = `
  input AS (
    SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::text[], $5::int[])
      AS t(mac, subnet_id, ip, hostname, idx)
  ),
  classified AS (
    SELECT i.*, own.host_id AS own_id, own.ipv4_address AS own_ip, own.hostname AS own_hostname,
           holder.host_id AS holder_id
      FROM input i
      LEFT JOIN LATERAL (
        SELECT h.host_id, h.ipv4_address, h.hostname FROM hosts h
         WHERE h.dhcp_identifier = i.mac AND h.dhcp_identifier_type + 0 = ${HW_ADDRESS} AND h.dhcp4_subnet_id = i.subnet_id
         LIMIT 1) own ON true
      LEFT JOIN LATERAL (
        SELECT h.host_id FROM hosts h
         WHERE h.ipv4_address = i.ip AND h.dhcp4_subnet_id = i.subnet_id
           AND NOT (h.dhcp_identifier = i.mac AND h.dhcp_identifier_type = ${HW_ADDRESS})
         LIMIT 1) holder ON true
  ),
  todo AS (
    SELECT * FROM classified
     WHERE holder_id IS NULL
       AND (own_id IS NULL OR own_ip IS DISTINCT FROM ip
            OR (hostname IS NOT NULL AND own_hostname IS DISTINCT FROM hostname))
  )`;

// One statement on the arbiter. The WHERE clause of ON CONFLICT lets PostgreSQL infer Kea's partial
// index (WHERE dhcp4_subnet_id IS NOT NULL), the older "... AND <> 0" one, or a plain constraint.
const UPSERT_SQL = `
WITH ${CLASSIFY},
  written AS (
    INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname)
    SELECT mac, ${HW_ADDRESS}, subnet_id, ip, hostname FROM todo ORDER BY idx
    ON CONFLICT (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id)
      WHERE dhcp4_subnet_id IS NOT NULL AND dhcp4_subnet_id <> 0
    DO UPDATE SET ipv4_address = EXCLUDED.ipv4_address,
                  hostname = COALESCE(EXCLUDED.hostname, hosts.hostname)
      WHERE hosts.ipv4_address IS DISTINCT FROM EXCLUDED.ipv4_address
         OR (EXCLUDED.hostname IS NOT NULL AND hosts.hostname IS DISTINCT FROM EXCLUDED.hostname)
    RETURNING host_id, dhcp_identifier, dhcp4_subnet_id, (xmax = 0) AS inserted
  )
SELECT c.idx, c.own_id, c.holder_id, w.host_id, w.inserted
  FROM classified c
  LEFT JOIN written w ON w.dhcp_identifier = c.mac AND w.dhcp4_subnet_id = c.subnet_id`;

// Without an arbiter: check-then-write, made safe by the advisory lock held for the transaction.
const FALLBACK_SQL = `
WITH ${CLASSIFY},
  inserted AS (
    INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname)
    SELECT mac, ${HW_ADDRESS}, subnet_id, ip, hostname FROM todo WHERE own_id IS NULL ORDER BY idx
    RETURNING host_id, dhcp_identifier, dhcp4_subnet_id
  ),
  updated AS (
    UPDATE hosts h SET ipv4_address = t.ip, hostname = COALESCE(t.hostname, h.hostname)
      FROM todo t WHERE t.own_id IS NOT NULL AND h.host_id = t.own_id
    RETURNING h.host_id
  )
SELECT c.idx, c.own_id, c.holder_id,
       COALESCE(ins.host_id, upd.host_id) AS host_id, ins.host_id IS NOT NULL AS inserted
  FROM classified c
  LEFT JOIN inserted ins ON ins.dhcp_identifier = c.mac AND ins.dhcp4_subnet_id = c.subnet_id
  LEFT JOIN updated upd ON upd.host_id = c.own_id`;

interface Row {
  idx: number;
  own_id: number | null;
  holder_id: number | null;
  host_id: number | null;
  inserted: boolean | null;
}

/**
 * Within one batch, the newest lease for an address wins: an earlier holder of the same address
 * lost it (Kea reassigned it), and reserving both would give one address to two identifiers.
 */
export function supersededInBatch(leases: readonly Lease[]): Set<number> {
  const lastByAddress = new Map<string, number>();
  leases.forEach((l, i) => lastByAddress.set(`${l.subnetId}/${l.address}`, i));
  const superseded = new Set<number>();
  leases.forEach((l, i) => {
    if (lastByAddress.get(`${l.subnetId}/${l.address}`) !== i) superseded.add(i);
  });
  return superseded;
}

/**
 * Writes reservations for a batch in one transaction. Leases must have distinct (hwaddr, subnet)
 * keys (the queue guarantees it). Returns one result per lease, in order.
 */
export async function writeReservations(
  db: ClientBase, path: WritePath, leases: readonly Lease[], guard?: string,
): Promise<ReservationResult[]> {
  const superseded = supersededInBatch(leases);
  const batch = leases.map((lease, idx) => ({ lease, idx })).filter(({ idx }) => !superseded.has(idx));
  const results: ReservationResult[] = leases.map((lease) => ({ lease, outcome: 'superseded', hostId: null }));
  if (batch.length === 0) return results;

  // One round trip opens the transaction and takes the lock (a simple query may hold both). The
  // HA guard runs after the lock, so no other monitor can write between it and our COMMIT.
  const begun: unknown = await db.query(`BEGIN; SELECT pg_advisory_xact_lock(${WRITER_LOCK})${guard ? `; ${guard}` : ''}`);
  try {
    if (guard && !(begun as { rows: { ok: boolean }[] }[])[2]?.rows[0]?.ok) throw new FencedError('not the active monitor');
    // Named: parsed and planned once per connection, not once per batch.
    const { rows } = await db.query<Row>({
      name: path === 'upsert' ? 'klm_upsert_v1' : 'klm_fallback_v1',
      text: path === 'upsert' ? UPSERT_SQL : FALLBACK_SQL,
      values: [
        batch.map(({ lease }) => lease.hwaddr),
        batch.map(({ lease }) => lease.subnetId),
        batch.map(({ lease }) => lease.address),
        batch.map(({ lease }) => lease.hostname),
        batch.map(({ idx }) => idx),
      ],
    });
    await db.query('COMMIT');
    for (const r of rows) {
      const result = results[r.idx];
      if (r.holder_id !== null) {
        result.outcome = 'conflict';
        result.hostId = r.holder_id;
      } else if (r.host_id !== null) {
        result.outcome = r.inserted ? 'created' : 'updated';
        result.hostId = r.host_id;
      } else {
        result.outcome = 'unchanged';
        result.hostId = r.own_id;
      }
    }
    return results;
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
