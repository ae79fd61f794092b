import { statSync } from 'node:fs';
import { UsageError } from '../errors';
import { applyAdoption, planAdoption } from '../lifecycle/adopt';
import type { Options } from '../options';
import { emit, Output, withClient } from './client';

/** `reservations adopt`: marks unmarked rows a discovery record proves the monitor created. */
export async function adoptCommand(o: Options, dryRun: boolean, out: Output): Promise<number> {
  // The evidence is there or nowhere: a wrong --output-dir is a usage error, not "0 adopted".
  const dir = statSync(o.outputDir, { throwIfNoEntry: false });
  if (!dir?.isDirectory()) {
    throw new UsageError(
      `--output-dir ${o.outputDir} ${dir ? 'is not a directory' : 'does not exist'}: adopt reads the discovery records the daemon wrote there; give the daemon's --output-dir`,
    );
  }
  const { plan, adopted } = await withClient(o.db, 'kea-lease-monitor-adopt', async (c) => {
    const p = await planAdoption(c, o.outputDir);
    return { plan: p, adopted: dryRun ? p.adopt : await applyAdoption(c, p) };
  });
  const verb = dryRun ? 'would adopt' : 'adopted';
  for (const a of adopted) {
    emit(
      out,
      { action: 'adopt', host_id: a.host_id, mac: a.mac, ip: a.ip, subnet_id: a.subnet_id },
      `${verb} ${a.mac} ${a.ip} subnet ${a.subnet_id} host_id ${a.host_id}`,
    );
  }
  for (const s of plan.skipped) {
    emit(
      out,
      { action: 'skip', skipped: true, mac: s.mac, host_id: s.host_id, reason: s.reason },
      `skipped ${s.mac} host_id ${s.host_id ?? '-'}: ${s.reason}`,
    );
  }
  emit(
    out,
    { adopted: adopted.length, dry_run: dryRun, skipped: plan.skipped.length },
    `${dryRun ? '[dry run] ' : ''}${verb} ${adopted.length} reservations; ${plan.skipped.length} records did not match`,
  );
  return 0;
}
