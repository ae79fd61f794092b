import { deleteOwned, listOwned, removeRecords } from '../lifecycle/owned';
import type { Options } from '../options';
import { emit, Output, withClient } from './client';

/** `reservations purge`: the undo. Every reservation the monitor owns goes, nothing else does. */
export async function purgeCommand(o: Options, out: Output): Promise<number> {
  const { rows, records } = await withClient(o.db, 'kea-lease-monitor-purge', async (c) => {
    const owned = await listOwned(c);
    if (o.dryRun) return { rows: owned, records: 0 };
    const removed = await deleteOwned(
      c,
      owned.map((r) => r.host_id),
      false,
    );
    return { rows: removed, records: removeRecords(o.outputDir, removed) };
  });
  const verb = o.dryRun ? 'would remove' : 'removed';
  for (const r of rows) {
    emit(
      out,
      { host_id: r.host_id, mac: r.mac, ip: r.ip, subnet_id: r.subnet_id },
      `${verb} ${r.mac} ${r.ip} subnet ${r.subnet_id} host_id ${r.host_id}`,
    );
  }
  emit(
    out,
    { removed: rows.length, dry_run: o.dryRun, records_removed: records },
    `${o.dryRun ? '[dry run] ' : ''}${verb} ${rows.length} reservations, ${records} discovery records`,
  );
  return 0;
}
