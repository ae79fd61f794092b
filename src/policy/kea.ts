/**
 * The selection rule kea-dhcp4's own configuration adds: no reservation in a subnet where Kea would
 * not honour it. Pure, shared by the daemon and `plan`. Without a configuration (none read yet, or
 * a subnet Kea's last known configuration does not have) nothing is refused.
 */
import type { SubnetVerdict } from '../kea/config-verdict';
import type { Lease } from '../lease';
import type { Selection } from './select';

export function keaSelection(subnetId: number, verdicts: ReadonlyMap<number, SubnetVerdict> | null): Selection {
  const v = verdicts?.get(subnetId);
  return v === undefined || v.verdict === 'honoured' ? { selected: true } : { selected: false, reason: 'kea-not-honoured' };
}

/** What the writer asks before reserving a lease the selection policy chose (the daemon's config watch). */
export interface LeaseGate {
  admit(lease: Pick<Lease, 'hwaddr' | 'address' | 'subnetId'>): Selection;
}
