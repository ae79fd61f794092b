/**
 * The domain's words for what happened to a lease: the outcome of a write, the decision before it,
 * and the rules every writer (SQL, Kea API) and `plan` share. No database here.
 */
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

export interface ReservationPolicy {
  /** Most reservations of the monitor's own per subnet; null: no cap. */
  maxPerSubnet: number | null;
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

export const OUTCOME_OF_ACTION: Record<ReservationAction, ReservationOutcome> = {
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
