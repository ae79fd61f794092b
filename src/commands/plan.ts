import { readLease4Store, readMemfileStore } from '../lifecycle/lease-store';
import { PLAN_ACTIONS, planStore, REASON_TEXT } from '../lifecycle/plan';
import type { Options } from '../options';
import { compilePolicy } from '../policy/select';
import { emit, Output, withClient } from './client';

/** `plan`: what the daemon would do with the lease store as it stands; writes nothing. */
export async function planCommand(o: Options, out: Output): Promise<number> {
  const policy = compilePolicy(o.policy);
  const lines = await withClient(o.db, 'kea-lease-monitor-plan', async (c) => {
    const store = o.useDatabaseEvents ? await readLease4Store(c) : await readMemfileStore(o.leaseFile);
    return planStore(c, store, policy, { maxPerSubnet: o.maxReservationsPerSubnet });
  });
  // Every action counted, zero included; JSON keys in snake_case.
  const counts = new Map(PLAN_ACTIONS.map((a) => [a, 0]));
  for (const l of lines) {
    counts.set(l.action, (counts.get(l.action) ?? 0) + 1);
    emit(
      out,
      { ...l },
      `${l.action.padEnd(12)} ${l.mac} ${l.ip.padEnd(15)} subnet ${l.subnet_id} ${l.hostname ?? '-'}: ${REASON_TEXT[l.reason]}`,
    );
  }
  const nonZero = [...counts].filter(([, n]) => n > 0);
  emit(
    out,
    { leases: lines.length, ...Object.fromEntries([...counts].map(([a, n]) => [a.replace(/-/g, '_'), n])), dry_run: true },
    `${lines.length} live leases: ${nonZero.map(([a, n]) => `${n} ${a}`).join(', ') || 'nothing to do'}`,
  );
  return 0;
}
