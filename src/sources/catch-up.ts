import type { Database } from '../db/pool';
import { checkLeasableAddress, classifyLease, InvalidLeaseError, Lease, LeaseFields, macFileStem } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import type { LeaseSink } from '../pipeline/intake';
import { HandledGroup } from '../pipeline/handled-group';
import { LeasePrefilter, prefilterSql, prefilterValues } from './lease-prefilter';

const PAGE = 5000;
/** Queued leases above which a pass waits before reading its next page: the writer stays fed, memory stays low. */
export const READ_AHEAD = 2 * PAGE;
/**
 * A pass's leases not yet handled (queued, being reserved, or their records waiting for the disk)
 * above which it waits before reading its next page. Records wait longest (a burst's reservations
 * go first), so a start that reserves every lease of a large backlog would otherwise hold up to
 * --record-backlog of them: the pass paces itself on its records, NOTIFY bursts keep the whole limit.
 */
export const IN_FLIGHT = 4 * PAGE;

// The live leases in the selected subnets, in keyset pages on the primary key (memory stays flat for
// 100k+ leases), and whether each device's reservation for that address exists.
// "dhcp_identifier_type + 0": right after a burst, before autovacuum has analysed hosts, the planner
// otherwise probes hosts through fk_host_identifier_type (every row has type 0) once per lease:
// 10 s instead of 50 ms for 50,000 leases, measured.
const LIVE_LEASES = `
  FROM lease4 l
 WHERE l.address > $1
   AND l.state = 0 AND l.expire > now() AND l.valid_lifetime > 0
   AND l.hwaddr IS NOT NULL AND length(l.hwaddr) BETWEEN 1 AND 20
   AND l.subnet_id > 0 AND (cardinality($2::bigint[]) = 0 OR l.subnet_id = ANY ($2::bigint[]))`;
const COLUMNS = `l.address, l.hwaddr, l.subnet_id, l.hostname, l.state, l.valid_lifetime,
       floor(extract(epoch FROM l.expire))::bigint AS expire`;
const RESERVED = `EXISTS (
     SELECT 1 FROM hosts h
      WHERE h.dhcp_identifier = l.hwaddr AND h.dhcp_identifier_type + 0 = 0
        AND h.dhcp4_subnet_id = l.subnet_id AND h.ipv4_address = l.address)`;

// Catch-up: the live leases whose device has no reservation for that address yet.
const CATCH_UP_SQL = `SELECT ${COLUMNS} ${LIVE_LEASES} AND NOT ${RESERVED} ORDER BY l.address LIMIT ${PAGE}`;

// Reconciliation: every live lease, with whether its reservation exists, so that a lease whose
// reservation committed but whose discovery record was never written (SIGKILL between COMMIT and
// the record, a full disk at stop) is queued again; the writer then finds it unchanged (or an
// operator's, foreign) and writes the record.
const RECONCILE_SQL = `SELECT ${COLUMNS}, ${RESERVED} AS reserved ${LIVE_LEASES} ORDER BY l.address LIMIT ${PAGE}`;
// A reconcile pass with a MAC or address policy: the same, without the leases the policy leaves out.
const RECONCILE_FILTERED_SQL = `SELECT ${COLUMNS}, ${RESERVED} AS reserved ${LIVE_LEASES} ${prefilterSql(3)} ORDER BY l.address LIMIT ${PAGE}`;
// A pass's first page also gets the MACs that have a record ($3, a bytea[] literal: one
// custom-planned constant, so = ANY is hashed) and leaves out the leases both reserved and
// recorded: a pass with nothing to do is one query returning no row. Later pages, only when the
// first was full, are filtered in the client, so the MACs cross the socket once a pass.
const RECORDED = `AND NOT (l.hwaddr = ANY ($3::bytea[]) AND ${RESERVED})`;
const RECONCILE_RECORDED_SQL = `SELECT ${COLUMNS}, ${RESERVED} AS reserved ${LIVE_LEASES} ${RECORDED} ORDER BY l.address LIMIT ${PAGE}`;
const RECONCILE_RECORDED_FILTERED_SQL = `SELECT ${COLUMNS}, ${RESERVED} AS reserved ${LIVE_LEASES} ${RECORDED} ${prefilterSql(4)} ORDER BY l.address LIMIT ${PAGE}`;

/**
 * The statement of one catch-up page: `stems` (a reconcile pass) or not, `prefilter` only with
 * stems; `recorded` (recordedMacs) only with stems, to leave out on the server what is reserved and recorded.
 */
export function catchUpQuery(
  after: number,
  subnets: ReadonlySet<number>,
  stems: boolean,
  prefilter: LeasePrefilter | null,
  recorded: string | null = null,
): { text: string; values: unknown[] } {
  const base = [after, [...subnets]];
  if (!stems) return { text: CATCH_UP_SQL, values: base };
  const filter = prefilter ? prefilterValues(prefilter) : [];
  if (recorded === null) return { text: prefilter ? RECONCILE_FILTERED_SQL : RECONCILE_SQL, values: [...base, ...filter] };
  return { text: prefilter ? RECONCILE_RECORDED_FILTERED_SQL : RECONCILE_RECORDED_SQL, values: [...base, recorded, ...filter] };
}

/**
 * The MACs of these record stems (aa-bb-..., as macFileStem writes them) as a bytea[] literal; a
 * name of another shape is left out. Written byte by byte into one buffer: a pass over 200,000
 * records makes no string per MAC (their garbage was a reconcile pass's peak memory).
 */
export function recordedMacs(stems: ReadonlySet<string>): string {
  let size = 2;
  for (const stem of stems) size += stem.length + 6;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  out[at++] = BRACE_OPEN;
  for (const stem of stems) {
    if (!STEM.test(stem)) continue;
    if (at > 1) out[at++] = COMMA;
    // "\\x" then the hex digits: the array literal's escaping of bytea's \x input form.
    at += out.write('"\\\\x', at, 'latin1');
    for (let i = 0; i < stem.length; i += 3) {
      out[at++] = stem.charCodeAt(i);
      out[at++] = stem.charCodeAt(i + 1);
    }
    out[at++] = QUOTE;
  }
  out[at++] = BRACE_CLOSE;
  return out.toString('latin1', 0, at);
}
const [BRACE_OPEN, BRACE_CLOSE, COMMA, QUOTE] = [0x7b, 0x7d, 0x2c, 0x22];
const STEM = /^[0-9a-f]{2}(?:-[0-9a-f]{2}){0,19}$/;

/** Rows per page. */
export const CATCH_UP_PAGE = PAGE;

interface Row {
  address: string;
  hwaddr: Buffer;
  subnet_id: string;
  hostname: string | null;
  state: string;
  valid_lifetime: string;
  expire: string;
  reserved?: boolean;
}

/** What the writer already decided for a device that has no reservation (foreign, limit), while it still holds. */
export interface AlreadyDecided {
  holds(lease: Lease): 'foreign' | 'limit' | null;
}

export interface CatchUpScope {
  /** Also queue the reserved leases whose discovery record is missing from the directory (these stems). */
  recordStems?: (() => Set<string>) | null;
  /** Leases not to queue again: decided before, unchanged since. */
  decided?: AlreadyDecided | null;
  /**
   * With recordStems: leave out in the query the leases this part of the policy leaves out. They are
   * then neither queued nor counted as not selected again (a reconcile pass rereads the same leases).
   */
  prefilter?: LeasePrefilter | null;
}

/**
 * Finds leases committed while nobody was listening and queues them; resolves when all are written.
 * With `recordStems`, also the reserved leases whose discovery record is missing from the directory.
 */
export async function catchUp(
  db: Database,
  subnets: ReadonlySet<number>,
  queue: LeaseSink,
  log: Logger,
  metrics: Metrics,
  { recordStems = null, decided = null, prefilter = null }: CatchUpScope = {},
): Promise<number> {
  let after = 0;
  let found = 0;
  let recordsMissing = 0;
  const skipped = { foreign: 0, limit: 0 };
  const started = Date.now();
  // Pages are read as fast as the queue takes them (READ_AHEAD) and their records follow (IN_FLIGHT);
  // the pass ends once every queued lease is handled.
  const handled = new HandledGroup();
  // Read once, before the first page: a record written meanwhile at worst makes one lease go round again.
  const stems = recordStems?.() ?? null;
  let recorded = stems ? recordedMacs(stems) : null;
  for (;;) {
    // Not the whole --queue-size: it is there for bursts, and a pass over a large backlog would fill it.
    if (after > 0) {
      await queue.whenAtMost(READ_AHEAD);
      await handled.atMost(IN_FLIGHT);
    }
    const q = catchUpQuery(after, subnets, stems !== null, prefilter, recorded);
    recorded = null;
    const { rows } = await db.query<Row>(q.text, q.values);
    if (rows.length === 0) break;
    let queued = 0;
    for (const r of rows) {
      if (stems && r.reserved) {
        if (stems.has(macFileStem(r.hwaddr))) continue;
        recordsMissing++;
      }
      const fields: LeaseFields = {
        address: Number(r.address),
        hwaddr: r.hwaddr,
        subnetId: Number(r.subnet_id),
        hostname: r.hostname,
        state: Number(r.state),
        validLifetime: Number(r.valid_lifetime),
        expire: Number(r.expire),
      };
      try {
        checkLeasableAddress(fields.address);
      } catch (err) {
        if (!(err instanceof InvalidLeaseError)) throw err;
        metrics.inc(...M.rejected, { source: 'database', reason: 'invalid-row' });
        log.warn('lease4 row refused by catch-up', { error: err.message });
        continue;
      }
      const c = classifyLease(fields, 'database', subnets);
      if (c.kind !== 'live') continue;
      const held = decided?.holds(c.lease) ?? null;
      if (held) skipped[held]++;
      else {
        await queue.enqueueInto(c.lease, handled);
        queued++;
      }
    }
    found += queued;
    metrics.inc(...M.catchUp, {}, queued);
    after = Number(rows[rows.length - 1].address);
    if (rows.length < PAGE) break;
  }
  await handled.all();
  if (recordsMissing > 0) metrics.inc(...M.recordsReconciled, {}, recordsMissing);
  for (const [outcome, n] of Object.entries(skipped)) if (n > 0) metrics.inc(...M.catchUpSkipped, { outcome }, n);
  if (found > 0) {
    log.info('Caught up with leases committed while not listening', {
      leases: found,
      records_missing: recordsMissing,
      seconds: (Date.now() - started) / 1000,
    });
  } else log.debug('Catch-up found nothing to reserve', { skipped_foreign: skipped.foreign, skipped_limit: skipped.limit });
  return found;
}
