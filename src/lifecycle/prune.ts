/**
 * Which of the monitor's reservations belong to devices unseen for a while, as far as Kea's lease
 * store shows: a device with a live lease is never a candidate; otherwise it was last seen at the
 * latest expiry the store still holds for it, or, if the store holds nothing for it (Kea flushed
 * the lease), when the reservation was created (the monitor saw a live lease then).
 */
import type { LeaseStore } from './lease-store';
import type { OwnedRow } from './owned';
import { leaseKey } from '../lease';

export interface PruneCandidate {
  row: OwnedRow;
  /** Epoch seconds. */
  lastSeen: number;
}

export function pruneCandidates(
  rows: OwnedRow[],
  store: LeaseStore,
  unseenForSeconds: number,
  nowSeconds = Date.now() / 1000,
): PruneCandidate[] {
  const out: PruneCandidate[] = [];
  for (const row of rows) {
    const seen = store.devices.get(leaseKey({ hwaddr: row.hwaddr, subnetId: row.subnet_id }));
    if (seen?.live) continue;
    const created = Date.parse(row.created) / 1000;
    const lastSeen = seen?.lastSeen ?? (Number.isNaN(created) ? -Infinity : created);
    // A mark without a readable time and no lease history: unseen for as long as anyone can tell.
    if (nowSeconds - lastSeen >= unseenForSeconds) out.push({ row, lastSeen: Number.isFinite(lastSeen) ? lastSeen : 0 });
  }
  return out;
}
