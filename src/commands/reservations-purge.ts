import { deleteOwned, listOwned, removeRecords, selectOwned } from '../lifecycle/owned';
import type { Options } from '../options';
import { compilePolicy } from '../policy/select';
import { emit, Output, refuseWhileRunning, withClient } from './client';

export interface PurgeFlags {
  dryRun: boolean;
  force: boolean;
}

/**
 * `reservations purge`: the undo. The reservations the monitor owns go (all of them, or those the
 * scope flags select), with their discovery records; nothing else does. The dry run counts the
 * records by the same test the real run deletes them by.
 */
export async function purgeCommand(o: Options, f: PurgeFlags, out: Output): Promise<number> {
  const scope = compilePolicy(o.policy);
  const { rows, records } = await withClient(o.db, 'kea-lease-monitor-purge', async (c) => {
    await refuseWhileRunning(c, 'reservations purge', f, out);
    const owned = selectOwned(await listOwned(c), scope);
    if (f.dryRun) return { rows: owned, records: removeRecords(o.outputDir, owned, true) };
    const removed = await deleteOwned(
      c,
      owned.map((r) => r.host_id),
      false,
    );
    return { rows: removed, records: removeRecords(o.outputDir, removed) };
  });
  const verb = f.dryRun ? 'would remove' : 'removed';
  for (const r of rows) {
    emit(
      out,
      { host_id: r.host_id, mac: r.mac, ip: r.ip, subnet_id: r.subnet_id, hostname: r.hostname },
      `${verb} ${r.mac} ${r.ip} subnet ${r.subnet_id} host_id ${r.host_id}${r.hostname ? ` ${r.hostname}` : ''}`,
    );
  }
  emit(
    out,
    { removed: rows.length, dry_run: f.dryRun, records_removed: records },
    `${f.dryRun ? '[dry run] ' : ''}${verb} ${rows.length} reservations, ${records} discovery records`,
  );
  return 0;
}
