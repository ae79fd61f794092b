/**
 * `reservations prune` and the daemon's --prune-unseen-for timer: one routine. In database mode
 * the final DELETE re-checks lease4, so a device that got a lease meanwhile keeps its reservation.
 */
import type { ClientBase } from 'pg';
import type { Fence } from '../db/writer-lock';
import { readLease4Store, readMemfileStore } from './lease-store';
import { deleteOwned, listOwned, OwnedRow, removeRecords } from './owned';
import { pruneCandidates, PruneCandidate } from './prune';

export interface PruneSettings {
  useDatabaseEvents: boolean;
  leaseFile: string;
  outputDir: string;
  unseenForSeconds: number;
  dryRun: boolean;
  /** HA: delete only while this process is the active monitor. */
  fence?: Fence;
}

export interface PruneResult {
  /** Removed, or with dryRun the ones that would be. */
  rows: Array<OwnedRow & { last_seen: string | null }>;
  recordsRemoved: number;
}

export async function prune(db: ClientBase, s: PruneSettings): Promise<PruneResult> {
  const now = Date.now() / 1000;
  const store = s.useDatabaseEvents ? await readLease4Store(db, now) : await readMemfileStore(s.leaseFile, now);
  const candidates = pruneCandidates(await listOwned(db), store, s.unseenForSeconds, now);
  const lastSeen = new Map<number, PruneCandidate>(candidates.map((c) => [c.row.host_id, c]));
  const withSeen = (r: OwnedRow) => {
    const t = lastSeen.get(r.host_id)?.lastSeen ?? 0;
    return { ...r, last_seen: t > 0 ? new Date(t * 1000).toISOString() : null };
  };
  if (s.dryRun) return { rows: candidates.map((c) => withSeen(c.row)), recordsRemoved: 0 };
  const removed = await deleteOwned(
    db,
    candidates.map((c) => c.row.host_id),
    s.useDatabaseEvents,
    s.fence,
  );
  return { rows: removed.map(withSeen), recordsRemoved: removeRecords(s.outputDir, removed) };
}
