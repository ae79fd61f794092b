import { prune } from '../lifecycle/pruner';
import type { Options } from '../options';
import { emit, Output, withClient } from './client';

/** `reservations prune --unseen-for D`: removes own reservations of devices unseen for D, and their records. */
export async function pruneCommand(o: Options, unseenForSeconds: number, out: Output): Promise<number> {
  const r = await withClient(o.db, 'kea-lease-monitor-prune', (c) =>
    prune(c, {
      useDatabaseEvents: o.useDatabaseEvents,
      leaseFile: o.leaseFile,
      outputDir: o.outputDir,
      unseenForSeconds,
      dryRun: o.dryRun,
    }),
  );
  const verb = o.dryRun ? 'would remove' : 'removed';
  for (const row of r.rows) {
    emit(
      out,
      { host_id: row.host_id, mac: row.mac, ip: row.ip, subnet_id: row.subnet_id, last_seen: row.last_seen },
      `${verb} ${row.mac} ${row.ip} subnet ${row.subnet_id} host_id ${row.host_id} (last seen ${row.last_seen ?? 'unknown'})`,
    );
  }
  emit(
    out,
    { removed: r.rows.length, dry_run: o.dryRun, unseen_for_seconds: unseenForSeconds, records_removed: r.recordsRemoved },
    `${o.dryRun ? '[dry run] ' : ''}${verb} ${r.rows.length} reservations, ${r.recordsRemoved} discovery records`,
  );
  return 0;
}
