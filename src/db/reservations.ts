import type { ClientBase } from 'pg';
import type { Lease } from '../lease';
import { makeMark, newRowContext, ownedSql } from '../ownership';
import { arrayLiteral, boolLiteral, byteaLiteral, intLiteral, textLiteral } from './literals';

// superseded: a later lease in the same batch took the address, so this one is no longer held.
// failed: PostgreSQL refused this lease for good (isolated from its batch, logged, counted).
// foreign: a reservation the monitor does not own exists for this MAC and subnet; left untouched.
// limit: the subnet already holds --max-reservations-per-subnet of the monitor's own reservations.
// stale: lease4 holds no live lease for this address, MAC and subnet (a forged or outdated NOTIFY).
export type ReservationOutcome = 'created' | 'updated' | 'unchanged' | 'conflict' | 'foreign' | 'limit' | 'stale' | 'superseded' | 'failed';

/** What the statement decides per lease, before (or instead of) writing: shared by run, --dry-run and plan. */
export type ReservationAction = 'create' | 'update' | 'unchanged' | 'conflict' | 'foreign' | 'limit' | 'stale';

export interface ReservationResult {
  lease: Lease;
  outcome: ReservationOutcome;
  /** The reservation's host_id; for a conflict, the host holding the address; for foreign, the operator's row. */
  hostId: number | null;
}

export type WritePath = 'upsert' | 'fallback';

/** The HA fence was closed: this process is no longer the active monitor; nothing was written. */
export class FencedError extends Error {
  override name = 'FencedError';
}

export interface ReservationPolicy {
  /** Most reservations of the monitor's own per subnet; null: no cap. */
  maxPerSubnet: number | null;
}

const NO_CAP: ReservationPolicy = { maxPerSubnet: null };

// hw-address, in Kea's host_identifier_type table.
const HW_ADDRESS = 0;
// Serialises reservation writers (several monitors on one database) so the IP-conflict check and
// the per-subnet cap hold; prune and purge take it too.
export const WRITER_LOCK = 0x4b4c4e;

const OWNED_ROW = ownedSql('h.user_context');

/**
 * The shared head of every statement: each input row with its own reservation (same identifier and
 * subnet), whether the monitor owns it, any *other* host already holding the address in that
 * subnet, and (database mode) whether lease4 really holds that lease: a NOTIFY payload is only a
 * hint, since any role that can connect can send one. `decided` gives one action per row; the
 * write statements act only on create and update, so renewals and our own echoes never reach
 * INSERT and never draw a host_id from the sequence.
 *
 * "+ 0" keeps the planner off fk_host_identifier_type (where every row has type 0) when hosts has
 * no statistics yet, as after a burst; see sources/catch-up.ts.
 *
 * The cap counts the monitor's rows per subnet under the writers' advisory lock, and ranks this
 * batch's new devices after them, so a burst cannot overshoot it.
 */
function decideCte(live: boolean, withContext: boolean): string {
  return `
  input AS (
    SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::text[], $5::int[], $6::bool[]${withContext ? ', $8::text[]' : ''})
      AS t(mac, subnet_id, ip, raw_hostname, idx, check_live${withContext ? ', ctx' : ''})
  ),
  classified AS (
    SELECT i.*, own.host_id AS own_id, own.ipv4_address AS own_ip, own.hostname AS own_hostname, own.owned,
           holder.host_id AS holder_id,
           ${live ? 'lv.ok IS NOT NULL AS live_ok' : 'true AS live_ok'},
           -- A payload's hostname counts only when lease4 has the same one (no forged renames),
           -- compared after the sanitising lease.ts applies (control characters, trim, 255 bytes).
           ${
             live
               ? `CASE WHEN NOT i.check_live OR lv.hostname = i.raw_hostname OR lv.clean = i.raw_hostname
                     OR (octet_length(i.raw_hostname) > 251 AND starts_with(lv.clean, i.raw_hostname))
                     THEN i.raw_hostname END`
               : 'i.raw_hostname'
           } AS hostname
      FROM input i
      LEFT JOIN LATERAL (
        SELECT h.host_id, h.ipv4_address, h.hostname, ${OWNED_ROW} AS owned FROM hosts h
         WHERE h.dhcp_identifier = i.mac AND h.dhcp_identifier_type + 0 = ${HW_ADDRESS} AND h.dhcp4_subnet_id = i.subnet_id
         LIMIT 1) own ON true
      LEFT JOIN LATERAL (
        SELECT h.host_id FROM hosts h
         WHERE h.ipv4_address = i.ip AND h.dhcp4_subnet_id = i.subnet_id
           AND NOT (h.dhcp_identifier = i.mac AND h.dhcp_identifier_type = ${HW_ADDRESS})
         LIMIT 1) holder ON true${
           live
             ? `
      LEFT JOIN LATERAL (
        SELECT true AS ok, l.hostname,
               btrim(regexp_replace(l.hostname, '[\u0001-\u001f\u007f-\u009f\u2028\u2029]', '', 'g')) AS clean
          FROM lease4 l
         WHERE i.check_live AND l.address = i.ip AND l.hwaddr = i.mac AND l.subnet_id = i.subnet_id
           AND l.state = 0 AND l.expire > now() AND l.valid_lifetime > 0) lv ON true`
             : ''
         }
  ),
  first_pass AS (
    SELECT c.*, CASE
        WHEN c.check_live AND NOT c.live_ok THEN 'stale'
        WHEN c.own_id IS NOT NULL AND NOT c.owned THEN 'foreign'
        WHEN c.holder_id IS NOT NULL THEN 'conflict'
        WHEN c.own_id IS NULL THEN 'create'
        WHEN c.own_ip IS DISTINCT FROM c.ip OR (c.hostname IS NOT NULL AND c.own_hostname IS DISTINCT FROM c.hostname) THEN 'update'
        ELSE 'unchanged' END AS pre_action
      FROM classified c
  ),
  own_counts AS (
    SELECT h.dhcp4_subnet_id AS subnet_id, count(*) AS n FROM hosts h
     WHERE $7::int IS NOT NULL
       AND h.dhcp4_subnet_id IN (SELECT subnet_id FROM first_pass WHERE pre_action = 'create')
       AND ${OWNED_ROW}
     GROUP BY h.dhcp4_subnet_id
  ),
  decided AS (
    SELECT f.*, CASE
        WHEN f.pre_action = 'create' AND $7::int IS NOT NULL
         AND COALESCE(oc.n, 0) + row_number() OVER (PARTITION BY f.subnet_id, f.pre_action ORDER BY f.idx) > $7::int
        THEN 'limit' ELSE f.pre_action END AS action
      FROM first_pass f LEFT JOIN own_counts oc ON oc.subnet_id = f.subnet_id
  )`;
}

// One statement on the arbiter. The WHERE clause of ON CONFLICT lets PostgreSQL infer Kea's partial
// index (WHERE dhcp4_subnet_id IS NOT NULL), the older "... AND <> 0" one, or a plain constraint.
// Its DO UPDATE touches only rows carrying the mark, so an operator's row that appears between the
// check and the write is still left alone.
function upsertSql(live: boolean): string {
  return `
WITH ${decideCte(live, true)},
  written AS (
    INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
    SELECT mac, ${HW_ADDRESS}, subnet_id, ip, hostname, ctx FROM decided WHERE action IN ('create', 'update') ORDER BY idx
    ON CONFLICT (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id)
      WHERE dhcp4_subnet_id IS NOT NULL AND dhcp4_subnet_id <> 0
    DO UPDATE SET ipv4_address = EXCLUDED.ipv4_address,
                  hostname = COALESCE(EXCLUDED.hostname, hosts.hostname)
      WHERE ${ownedSql('hosts.user_context')}
        AND (hosts.ipv4_address IS DISTINCT FROM EXCLUDED.ipv4_address
             OR (EXCLUDED.hostname IS NOT NULL AND hosts.hostname IS DISTINCT FROM EXCLUDED.hostname))
    RETURNING host_id, dhcp_identifier, dhcp4_subnet_id, (xmax = 0) AS inserted
  )
SELECT d.idx, d.action, d.own_id, d.holder_id, w.host_id, w.inserted
  FROM decided d
  LEFT JOIN written w ON w.dhcp_identifier = d.mac AND w.dhcp4_subnet_id = d.subnet_id`;
}

// Without an arbiter: check-then-write, made safe by the advisory lock held for the transaction.
function fallbackSql(live: boolean): string {
  return `
WITH ${decideCte(live, true)},
  inserted AS (
    INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
    SELECT mac, ${HW_ADDRESS}, subnet_id, ip, hostname, ctx FROM decided WHERE action = 'create' ORDER BY idx
    RETURNING host_id, dhcp_identifier, dhcp4_subnet_id
  ),
  updated AS (
    UPDATE hosts h SET ipv4_address = d.ip, hostname = COALESCE(d.hostname, h.hostname)
      FROM decided d WHERE d.action = 'update' AND h.host_id = d.own_id AND ${OWNED_ROW}
    RETURNING h.host_id
  )
SELECT d.idx, d.action, d.own_id, d.holder_id,
       COALESCE(ins.host_id, upd.host_id) AS host_id, ins.host_id IS NOT NULL AS inserted
  FROM decided d
  LEFT JOIN inserted ins ON ins.dhcp_identifier = d.mac AND ins.dhcp4_subnet_id = d.subnet_id
  LEFT JOIN updated upd ON upd.host_id = d.own_id`;
}

// Read-only: the same decisions, nothing written (plan, --dry-run).
function classifySql(live: boolean): string {
  return `
WITH ${decideCte(live, false)}
SELECT d.idx, d.action, d.own_id, d.holder_id, NULL::int AS host_id, NULL::bool AS inserted FROM decided d`;
}

interface Row {
  idx: number;
  action: ReservationAction;
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

type Kind = WritePath | 'classify';

function statement(kind: Kind, live: boolean): { name: string; text: string } {
  const build = kind === 'upsert' ? upsertSql : kind === 'fallback' ? fallbackSql : classifySql;
  // Named: parsed and planned once per connection, not once per batch.
  return { name: `klm_${kind}_${live ? 'live' : 'plain'}_v2`, text: build(live) };
}

function params(batch: Array<{ lease: Lease; idx: number }>, policy: ReservationPolicy, withContext: boolean): unknown[] {
  const values: unknown[] = [
    batch.map(({ lease }) => lease.hwaddr),
    batch.map(({ lease }) => lease.subnetId),
    batch.map(({ lease }) => lease.address),
    batch.map(({ lease }) => lease.hostname),
    batch.map(({ idx }) => idx),
    batch.map(({ lease }) => lease.source === 'database'),
    policy.maxPerSubnet,
  ];
  if (withContext) {
    const now = new Date();
    const memfile = newRowContext(makeMark('memfile', now));
    const database = newRowContext(makeMark('database', now));
    values.push(batch.map(({ lease }) => (lease.source === 'database' ? database : memfile)));
  }
  return values;
}

const OUTCOME_OF_ACTION: Record<ReservationAction, ReservationOutcome> = {
  create: 'created',
  update: 'updated',
  unchanged: 'unchanged',
  conflict: 'conflict',
  foreign: 'foreign',
  limit: 'limit',
  stale: 'stale',
};

function hostIdFor(r: Row): number | null {
  if (r.action === 'conflict') return r.holder_id;
  if (r.action === 'limit' || r.action === 'stale') return null;
  return r.host_id ?? r.own_id;
}

/** What a written row means; a create or update that wrote nothing lost a race with another writer. */
function outcomeOf(r: Row, wrote: boolean): ReservationOutcome {
  if (!wrote || (r.action !== 'create' && r.action !== 'update')) return OUTCOME_OF_ACTION[r.action];
  if (r.host_id !== null) return r.inserted ? 'created' : 'updated';
  // The row for this MAC and subnet appeared (create) or lost its mark (update) since the check.
  return 'foreign';
}

function prepare(leases: readonly Lease[]) {
  const superseded = supersededInBatch(leases);
  const batch = leases.map((lease, idx) => ({ lease, idx })).filter(({ idx }) => !superseded.has(idx));
  const results: ReservationResult[] = leases.map((lease) => ({ lease, outcome: 'superseded', hostId: null }));
  // lease4 may not exist in file mode (memfile): only leases that came from it are checked against it.
  const live = batch.some(({ lease }) => lease.source === 'database');
  return { batch, results, live };
}

/**
 * Writes reservations for a batch in one transaction. Leases must have distinct (hwaddr, subnet)
 * keys (the queue guarantees it). Returns one result per lease, in order.
 */
export async function writeReservations(
  db: ClientBase,
  path: WritePath,
  leases: readonly Lease[],
  policy: ReservationPolicy = NO_CAP,
  guard?: string,
): Promise<ReservationResult[]> {
  const { batch, results, live } = prepare(leases);
  if (batch.length === 0) return results;

  // The common case (arbiter, no HA guard) is one round trip: see writeInOneTrip.
  if (path === 'upsert' && !guard) return writeInOneTrip(db, live, batch, policy, results);

  // One round trip opens the transaction and takes the lock (a simple query may hold both). The
  // HA guard runs after the lock, so no other monitor can write between it and our COMMIT.
  const begun: unknown = await db.query(`BEGIN; SELECT pg_advisory_xact_lock(${WRITER_LOCK})${guard ? `; ${guard}` : ''}`);
  try {
    if (guard && !(begun as { rows: { ok: boolean }[] }[])[2]?.rows[0]?.ok) throw new FencedError('not the active monitor');
    const { rows } = await db.query<Row>({ ...statement(path, live), values: params(batch, policy, true) });
    await db.query('COMMIT');
    return fill(results, rows);
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

function fill(results: ReservationResult[], rows: Row[]): ReservationResult[] {
  for (const r of rows) {
    const result = results[r.idx];
    result.outcome = outcomeOf(r, true);
    result.hostId = hostIdFor(r);
  }
  return results;
}

// Statements PREPAREd (SQL level) on each connection, for writeInOneTrip.
const preparedOn = new WeakMap<ClientBase, Set<string>>();
const UPSERT_TYPES = 'bytea[], bigint[], bigint[], text[], int[], bool[], int, text[]';

/**
 * BEGIN, the writers' lock, EXECUTE of the upsert (PREPAREd once per connection, so it is planned
 * once) and COMMIT, sent as one simple-protocol message: one round trip per batch instead of three.
 * The values travel as literals (db/literals.ts). A statement the server no longer knows (26000)
 * is prepared again once.
 */
async function writeInOneTrip(
  db: ClientBase,
  live: boolean,
  batch: Array<{ lease: Lease; idx: number }>,
  policy: ReservationPolicy,
  results: ReservationResult[],
): Promise<ReservationResult[]> {
  const name = `klm_trip_upsert_${live ? 'live' : 'plain'}_v2`;
  const args = literalArgs(batch, policy);
  for (let attempt = 0; ; attempt++) {
    let prepared = preparedOn.get(db);
    if (!prepared) preparedOn.set(db, (prepared = new Set()));
    if (!prepared.has(name)) {
      await db.query(`PREPARE ${name} (${UPSERT_TYPES}) AS ${upsertSql(live)}`);
      prepared.add(name);
    }
    try {
      const out = (await db.query(
        `BEGIN; SELECT pg_advisory_xact_lock(${WRITER_LOCK}); EXECUTE ${name}(${args}); COMMIT`,
      )) as unknown as Array<{ rows: Row[] }>;
      return fill(results, out[2].rows);
    } catch (err) {
      await db.query('ROLLBACK').catch(() => undefined);
      if ((err as { code?: string }).code !== '26000' || attempt > 0) throw err;
      prepared.delete(name);
    }
  }
}

function literalArgs(batch: Array<{ lease: Lease; idx: number }>, policy: ReservationPolicy): string {
  const now = new Date();
  const context = {
    memfile: textLiteral(newRowContext(makeMark('memfile', now))),
    database: textLiteral(newRowContext(makeMark('database', now))),
  };
  return [
    arrayLiteral(
      batch.map(({ lease }) => byteaLiteral(lease.hwaddr)),
      'bytea',
    ),
    arrayLiteral(
      batch.map(({ lease }) => intLiteral(lease.subnetId)),
      'bigint',
    ),
    arrayLiteral(
      batch.map(({ lease }) => intLiteral(lease.address)),
      'bigint',
    ),
    arrayLiteral(
      batch.map(({ lease }) => textLiteral(lease.hostname)),
      'text',
    ),
    arrayLiteral(
      batch.map(({ idx }) => intLiteral(idx)),
      'int',
    ),
    arrayLiteral(
      batch.map(({ lease }) => boolLiteral(lease.source === 'database')),
      'bool',
    ),
    `${intLiteral(policy.maxPerSubnet)}::int`,
    arrayLiteral(
      batch.map(({ lease }) => (lease.source === 'database' ? context.database : context.memfile)),
      'text',
    ),
  ].join(', ');
}

export interface ReservationDecision {
  lease: Lease;
  /** 'superseded' when a later lease in the same batch holds the address. */
  action: ReservationAction | 'superseded';
  hostId: number | null;
}

/**
 * The decisions writeReservations would make for this batch, from the same statement head, in one
 * read-only query: what `plan` prints and what `--dry-run` logs.
 */
export async function classifyReservations(
  db: ClientBase,
  leases: readonly Lease[],
  policy: ReservationPolicy = NO_CAP,
): Promise<ReservationDecision[]> {
  const { batch, live } = prepare(leases);
  const out: ReservationDecision[] = leases.map((lease) => ({ lease, action: 'superseded', hostId: null }));
  if (batch.length === 0) return out;
  const { rows } = await db.query<Row>({ ...statement('classify', live), values: params(batch, policy, false) });
  for (const r of rows) {
    out[r.idx].action = r.action;
    out[r.idx].hostId = r.action === 'conflict' ? r.holder_id : r.action === 'limit' || r.action === 'stale' ? null : r.own_id;
  }
  return out;
}

/** The outcome a decision would have had: how --dry-run logs and counts it. */
export function outcomeOfAction(action: ReservationAction | 'superseded'): ReservationOutcome {
  return action === 'superseded' ? 'superseded' : OUTCOME_OF_ACTION[action];
}
