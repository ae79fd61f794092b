import { DiscoveryWriter } from '../discovery';
import { readLease4Store, readMemfileStore } from '../lifecycle/lease-store';
import { planStore } from '../lifecycle/plan';
import type { Options } from '../options';
import { compilePolicy } from '../policy/select';
import { emit, Output, withClient } from './client';

/** `plan`: what the daemon would do with the lease store as it stands; writes nothing. */
export async function planCommand(o: Options, out: Output): Promise<number> {
  const policy = compilePolicy(o.policy);
  const records = new DiscoveryWriter(o.outputDir);
  const redfish = o.redfish.require ? (l: { hwaddr: Buffer }) => records.redfishOf(l.hwaddr)?.status ?? null : null;
  const lines = await withClient(o.db, 'kea-lease-monitor-plan', async (c) => {
    const store = o.useDatabaseEvents ? await readLease4Store(c) : await readMemfileStore(o.leaseFile);
    return planStore(c, store, policy, { maxPerSubnet: o.maxReservationsPerSubnet }, redfish);
  });
  const counts: Record<string, number> = {};
  for (const l of lines) {
    counts[l.action] = (counts[l.action] ?? 0) + 1;
    emit(out, { ...l }, `${l.action.padEnd(12)} ${l.mac} ${l.ip.padEnd(15)} subnet ${l.subnet_id}  ${l.reason}`);
  }
  emit(
    out,
    { leases: lines.length, ...counts, dry_run: true },
    `${lines.length} live leases: ${
      Object.entries(counts)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || 'nothing to do'
    }`,
  );
  return 0;
}
