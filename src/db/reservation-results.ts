import { OUTCOME_OF_ACTION, ReservationAction, ReservationDecision, ReservationOutcome, ReservationResult } from '../domain/outcomes';

/** One row of kea_lm_write_reservations. */
export interface CallRow {
  idx: number;
  action: ReservationAction;
  own_id: number | null;
  holder_id: number | null;
  host_id: number | null;
  inserted: boolean | null;
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
