import { type Lease, sanitizeHostname } from '../lease';
import { OUTCOME_OF_ACTION, ReservationAction, ReservationDecision, ReservationOutcome, ReservationResult } from '../domain/outcomes';

/** One row of kea_lm_write_reservations. */
export interface CallRow {
  idx: number;
  action: ReservationAction | 'superseded';
  own_id: number | null;
  holder_id: number | null;
  host_id: number | null;
  inserted: boolean | null;
  /** lease4's hostname for a database-sourced lease found live; null otherwise. */
  lease4_hostname: string | null;
}

// classify writes nothing: host_id is null there, so a decision names the device's own row.
function hostIdFor(r: CallRow): number | null {
  if (r.action === 'conflict') return r.holder_id;
  if (r.action === 'limit' || r.action === 'stale' || r.action === 'superseded') return null;
  return r.host_id ?? r.own_id;
}

/** What a written row means; a create or update that wrote nothing lost a race with another writer. */
function outcomeOf(r: CallRow): ReservationOutcome {
  if (r.action === 'superseded') return 'superseded';
  if (r.action !== 'create' && r.action !== 'update') return OUTCOME_OF_ACTION[r.action];
  if (r.host_id !== null) return r.inserted ? 'created' : 'updated';
  // The row for this MAC and subnet appeared (create) or lost its mark (update) since the check.
  return 'foreign';
}

/**
 * The lease as its discovery record tells it. A NOTIFY payload proves nothing: a database-sourced
 * lease lease4 confirmed carries lease4's hostname (sanitised as lease.ts does), never the payload's.
 */
function asConfirmed(lease: Lease, r: CallRow): Lease {
  if (lease.source !== 'database' || r.action === 'stale') return lease;
  const hostname = sanitizeHostname(r.lease4_hostname);
  return hostname === lease.hostname ? lease : { ...lease, hostname };
}

/** One result per lease, in order, from the function's rows (one per lease, by idx). */
export function fillResults(leases: readonly Lease[], rows: readonly CallRow[]): ReservationResult[] {
  const results: ReservationResult[] = leases.map((lease) => ({ lease, outcome: 'failed', hostId: null }));
  for (const r of rows) {
    results[r.idx] = { lease: asConfirmed(leases[r.idx], r), outcome: outcomeOf(r), hostId: hostIdFor(r) };
  }
  return results;
}

export function fillDecisions(leases: readonly Lease[], rows: readonly CallRow[]): ReservationDecision[] {
  const out: ReservationDecision[] = leases.map((lease) => ({ lease, action: 'superseded', hostId: null }));
  for (const r of rows) {
    out[r.idx] = {
      lease: asConfirmed(leases[r.idx], r),
      action: r.action,
      hostId: hostIdFor(r),
    };
  }
  return out;
}
