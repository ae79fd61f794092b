/**
 * `reservations prune` and the daemon's --prune-unseen-for timer: one routine. In database mode
 * the final DELETE re-checks lease4, so a device that got a lease meanwhile keeps its reservation.
 */
import type { ClientBase } from 'pg';
import type { Policy } from '../policy/select';
import { readLease4Store, readMemfileStore } from './lease-store';
import { deleteOwned, listOwned, OwnedRow, removeRecords, selectOwned } from './owned';
import { pruneCandidates, PruneCandidate } from './prune';
import type { Fence } from '../domain/fence';

export interface PruneSettings {
  useDatabaseEvents: boolean;
  leaseFile: string;
  outputDir: string;
  unseenForSeconds: number;
  dryRun: boolean;
  /** HA: delete only while this process is the active monitor. */
  fence?: Fence;
  /** `reservations prune`'s scope flags; the daemon's timer considers every own row. */
  scope?: Policy;
}

export interface PruneResult {
  /** Removed, or with dryRun the ones that would be. */
  rows: Array<OwnedRow & { last_seen: string | null }>;
  recordsRemoved: number;
}

export async function prune(db: ClientBase, s: PruneSettings): Promise<PruneResult> {
  const now = Date.now() / 1000;
  const store = s.useDatabaseEvents ? await readLease4Store(db, now) : await readMemfileStore(s.leaseFile, now);
  const owned = await listOwned(db);
  const candidates = pruneCandidates(s.scope ? selectOwned(owned, s.scope) : owned, store, s.unseenForSeconds, now);
  const lastSeen = new Map<number, PruneCandidate>(candidates.map((c) => [c.row.host_id, c]));
  const withSeen = (r: OwnedRow) => {
    const t = lastSeen.get(r.host_id)?.lastSeen ?? 0;
    return { ...r, last_seen: t > 0 ? new Date(t * 1000).toISOString() : null };
  };
  if (s.dryRun) {
    const rows = candidates.map((c) => c.row);
    return { rows: rows.map(withSeen), recordsRemoved: removeRecords(s.outputDir, rows, true) };
  }
  const removed = await deleteOwned(
    db,
    candidates.map((c) => c.row.host_id),
    s.useDatabaseEvents,
    s.fence,
  );
  return { rows: removed.map(withSeen), recordsRemoved: removeRecords(s.outputDir, removed) };
}
