import { prune } from '../lifecycle/pruner';
import type { Options } from '../options';
import { compilePolicy } from '../policy/select';
import { emit, Output, refuseWhileRunning, withClient } from './client';

export interface PruneFlags {
  unseenForSeconds: number;
  dryRun: boolean;
  force: boolean;
}

/** `reservations prune --unseen-for D`: removes own reservations of devices unseen for D, and their records. */
export async function pruneCommand(o: Options, f: PruneFlags, out: Output): Promise<number> {
  const r = await withClient(o.db, 'kea-lease-monitor-prune', async (c) => {
    await refuseWhileRunning(c, 'reservations prune', f, out);
    return prune(c, {
      useDatabaseEvents: o.useDatabaseEvents,
      leaseFile: o.leaseFile,
      outputDir: o.outputDir,
      unseenForSeconds: f.unseenForSeconds,
      dryRun: f.dryRun,
      scope: compilePolicy(o.policy),
    });
  });
  const verb = f.dryRun ? 'would remove' : 'removed';
  for (const row of r.rows) {
    emit(
      out,
      { host_id: row.host_id, mac: row.mac, ip: row.ip, subnet_id: row.subnet_id, hostname: row.hostname, last_seen: row.last_seen },
      `${verb} ${row.mac} ${row.ip} subnet ${row.subnet_id} host_id ${row.host_id}${row.hostname ? ` ${row.hostname}` : ''} (last seen ${row.last_seen ?? 'unknown'})`,
    );
  }
  emit(
    out,
    { removed: r.rows.length, dry_run: f.dryRun, unseen_for_seconds: f.unseenForSeconds, records_removed: r.recordsRemoved },
    `${f.dryRun ? '[dry run] ' : ''}${verb} ${r.rows.length} reservations, ${r.recordsRemoved} discovery records`,
  );
  return 0;
}
