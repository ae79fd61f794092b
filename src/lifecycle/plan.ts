/**
 * What the daemon would do with the lease store as it stands: the same subnet rule as the sources,
 * the same selection policy as the writer, and the same decision statement as the writes
 * (db/reservations.ts classifyReservations), so plan, --dry-run and the daemon cannot disagree.
 */
import type { ClientBase } from 'pg';
import { classifyReservations, ReservationAction, ReservationPolicy } from '../db/reservations';
import { formatIPv4, formatMac, Lease, leaseKey } from '../lease';
import { redfishVerdict } from '../policy/redfish';
import { Policy, selectLease } from '../policy/select';
import type { RedfishStatus } from '../redfish/service-root';
import { classifyStore, LeaseStore } from './lease-store';

export type PlanAction = ReservationAction | 'not-selected' | 'superseded' | 'pending-probe';

/** --require-redfish: what the device's record says its Redfish probe found (null: nothing yet). */
export type RecordedRedfish = (lease: Lease) => RedfishStatus | null;

export interface PlanLine {
  mac: string;
  ip: string;
  subnet_id: number;
  hostname: string | null;
  action: PlanAction;
  /** Why: the policy rule, or what the database holds. */
  reason: string;
  host_id: number | null;
}

const REASONS: Record<ReservationAction | 'superseded', string> = {
  create: 'no reservation for this device yet',
  update: "the monitor's reservation holds another address or hostname",
  unchanged: "the monitor's reservation already matches",
  conflict: 'another identifier holds this address in the subnet',
  foreign: 'a reservation the monitor does not own covers this device',
  limit: 'the subnet has reached --max-reservations-per-subnet',
  stale: 'lease4 no longer holds this lease',
  superseded: 'a later lease holds this address',
};

function line(l: Lease, action: PlanAction, reason: string, hostId: number | null): PlanLine {
  return {
    mac: formatMac(l.hwaddr),
    ip: formatIPv4(l.address),
    subnet_id: l.subnetId,
    hostname: l.hostname,
    action,
    reason,
    host_id: hostId,
  };
}

export async function planStore(
  db: ClientBase,
  store: LeaseStore,
  policy: Policy,
  cap: ReservationPolicy,
  requireRedfish: RecordedRedfish | null = null,
): Promise<PlanLine[]> {
  // As the queue does: later news about a device replaces earlier news, in the earlier one's place.
  const byDevice = new Map<string, Lease>();
  for (const c of classifyStore(store, new Set())) if (c.kind === 'live') byDevice.set(leaseKey(c.lease), c.lease);
  const out: PlanLine[] = [];
  const selected: Lease[] = [];
  const slot: number[] = [];
  for (const lease of byDevice.values()) {
    const s = selectLease(lease, policy);
    if (!s.selected) {
      out.push(line(lease, 'not-selected', s.reason, null));
    } else if (requireRedfish && redfishVerdict(requireRedfish(lease), false) !== 'reserve') {
      // The daemon holds it back until its device answers as a Redfish service.
      out.push(line(lease, 'pending-probe', 'waits for its device to answer as a Redfish service (--require-redfish)', null));
    } else {
      slot.push(out.length);
      out.push(line(lease, 'unchanged', '', null));
      selected.push(lease);
    }
  }
  // One statement for the whole store, so the cap ranks new devices exactly once.
  const decisions = await classifyReservations(db, selected, cap);
  decisions.forEach((d, i) => {
    out[slot[i]] = line(d.lease, d.action, REASONS[d.action], d.hostId);
  });
  return out;
}
