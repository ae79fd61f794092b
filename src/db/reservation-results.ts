import type { Lease } from '../lease';

// superseded: a later lease in the same batch took the address, so this one is no longer held.
// failed: PostgreSQL refused this lease for good (isolated from its batch, logged, counted).
// foreign: a reservation the monitor does not own exists for this MAC and subnet; left untouched.
// limit: the subnet already holds --max-reservations-per-subnet of the monitor's own reservations.
// stale: lease4 holds no live lease for this address, MAC and subnet (a forged or outdated NOTIFY).
export type ReservationOutcome = 'created' | 'updated' | 'unchanged' | 'conflict' | 'foreign' | 'limit' | 'stale' | 'superseded' | 'failed';

/** What the function decides per lease, before (or instead of) writing: shared by run, --dry-run and plan. */
export type ReservationAction = 'create' | 'update' | 'unchanged' | 'conflict' | 'foreign' | 'limit' | 'stale';

export interface ReservationResult {
  lease: Lease;
  outcome: ReservationOutcome;
  /** The reservation's host_id; for a conflict, the host holding the address; for foreign, the operator's row. */
  hostId: number | null;
}

export interface ReservationDecision {
  lease: Lease;
  /** 'superseded' when a later lease in the same batch holds the address. */
  action: ReservationAction | 'superseded';
  hostId: number | null;
}

/** One row of kea_lm_write_reservations. */
export interface CallRow {
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

const OUTCOME_OF_ACTION: Record<ReservationAction, ReservationOutcome> = {
  create: 'created',
  update: 'updated',
  unchanged: 'unchanged',
  conflict: 'conflict',
  foreign: 'foreign',
  limit: 'limit',
  stale: 'stale',
};

/** The outcome a decision would have had: how --dry-run logs and counts it. */
export function outcomeOfAction(action: ReservationAction | 'superseded'): ReservationOutcome {
  return action === 'superseded' ? 'superseded' : OUTCOME_OF_ACTION[action];
}

function hostIdFor(r: CallRow): number | null {
  if (r.action === 'conflict') return r.holder_id;
  if (r.action === 'limit' || r.action === 'stale') return null;
  return r.host_id ?? r.own_id;
}

/** What a written row means; a create or update that wrote nothing lost a race with another writer. */
function outcomeOf(r: CallRow): ReservationOutcome {
  if (r.action !== 'create' && r.action !== 'update') return OUTCOME_OF_ACTION[r.action];
  if (r.host_id !== null) return r.inserted ? 'created' : 'updated';
  // The row for this MAC and subnet appeared (create) or lost its mark (update) since the check.
  return 'foreign';
}

export function fillResults(results: ReservationResult[], rows: readonly CallRow[]): ReservationResult[] {
  for (const r of rows) {
    results[r.idx].outcome = outcomeOf(r);
    results[r.idx].hostId = hostIdFor(r);
  }
  return results;
}

export function fillDecisions(out: ReservationDecision[], rows: readonly CallRow[]): ReservationDecision[] {
  for (const r of rows) {
    out[r.idx].action = r.action;
    out[r.idx].hostId = r.action === 'conflict' ? r.holder_id : r.action === 'limit' || r.action === 'stale' ? null : r.own_id;
  }
  return out;
}
