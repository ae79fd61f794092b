/**
 * What the daemon would do with the lease store as it stands: the same subnet rule as the sources,
 * the same selection policy as the writer, and the same decision statement as the writes
 * (db/reservations.ts classifyReservations), so plan, --dry-run and the daemon cannot disagree.
 */
import type { ClientBase } from 'pg';
import { classifyReservations } from '../db/reservations';
import { formatIPv4, formatMac, Lease, leaseKey } from '../lease';
import type { SubnetVerdict } from '../kea/config-verdict';
import { keaSelection } from '../policy/kea';
import { redfishVerdict } from '../policy/redfish';
import { NotSelectedReason, Policy, selectLease } from '../policy/select';
import type { RedfishStatus } from '../redfish/service-root';
import { classifyStore, LeaseStore } from './lease-store';
import { ReservationAction, ReservationPolicy } from '../domain/outcomes';

export type PlanAction = ReservationAction | 'not-selected' | 'superseded' | 'pending-probe';

/** --require-redfish: what the device's record says its Redfish probe found (null: nothing yet). */
export type RecordedRedfish = (lease: Lease) => RedfishStatus | null;

/** Every action, in the order the summary counts them. */
export const PLAN_ACTIONS: readonly PlanAction[] = [
  'create',
  'update',
  'unchanged',
  'conflict',
  'foreign',
  'limit',
  'stale',
  'superseded',
  'not-selected',
  'pending-probe',
];

/** Why, as a code (JSON): the policy rule for not-selected, else what the database holds. */
export type PlanReason =
  | NotSelectedReason
  | 'no-reservation'
  | 'reservation-differs'
  | 'reservation-matches'
  | 'address-taken'
  | 'operator-reservation'
  | 'subnet-cap'
  | 'lease-gone'
  | 'address-reused'
  | 'pending-probe';

export interface PlanLine {
  mac: string;
  ip: string;
  subnet_id: number;
  hostname: string | null;
  action: PlanAction;
  reason: PlanReason;
  host_id: number | null;
}

const REASON_OF: Record<ReservationAction | 'superseded', PlanReason> = {
  create: 'no-reservation',
  update: 'reservation-differs',
  unchanged: 'reservation-matches',
  conflict: 'address-taken',
  foreign: 'operator-reservation',
  limit: 'subnet-cap',
  stale: 'lease-gone',
  superseded: 'address-reused',
};

/** Each reason in words, for the text output. */
export const REASON_TEXT: Record<PlanReason, string> = {
  'no-reservation': 'no reservation for this device yet',
  'reservation-differs': "the monitor's reservation holds another address or hostname",
  'reservation-matches': "the monitor's reservation already matches",
  'address-taken': 'another identifier holds this address in the subnet',
  'operator-reservation': 'a reservation the monitor does not own covers this device',
  'subnet-cap': 'the subnet has reached --max-reservations-per-subnet',
  'lease-gone': 'lease4 no longer holds this lease',
  'address-reused': 'a later lease holds this address',
  subnet: 'the subnet is not in --subnet-id',
  'mac-denied': 'the MAC matches --deny-mac-prefix',
  'hostname-denied': 'the hostname matches --deny-hostname',
  'mac-not-allowed': 'the MAC matches no --allow-mac-prefix',
  'hostname-not-allowed': 'the hostname matches no --allow-hostname (or there is none)',
  'address-not-allowed': 'the address is in no --allow-address range',
  'pending-probe': 'waits for its device to answer as a Redfish service (--require-redfish)',
  'kea-not-honoured': 'kea-dhcp4 would not honour a reservation in this subnet (see the kea subnet line)',
};

function line(l: Lease, action: PlanAction, reason: PlanReason, hostId: number | null): PlanLine {
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

/**
 * `verdicts`: kea-dhcp4's per-subnet verdicts (--kea-control-socket), applied after the policy as the
 * daemon does; `requireRedfish`: --require-redfish, what each device's record says its probe found.
 */
export async function planStore(
  db: ClientBase,
  store: LeaseStore,
  policy: Policy,
  cap: ReservationPolicy,
  verdicts: ReadonlyMap<number, SubnetVerdict> | null = null,
  requireRedfish: RecordedRedfish | null = null,
): Promise<PlanLine[]> {
  // As the queue does: later news about a device replaces earlier news, in the earlier one's place.
  const byDevice = new Map<string, Lease>();
  for (const c of classifyStore(store, new Set())) if (c.kind === 'live') byDevice.set(leaseKey(c.lease), c.lease);
  const out: PlanLine[] = [];
  const selected: Lease[] = [];
  const slot: number[] = [];
  for (const lease of byDevice.values()) {
    const chosen = selectLease(lease, policy);
    const s = chosen.selected ? keaSelection(lease.subnetId, verdicts) : chosen;
    if (!s.selected) {
      out.push(line(lease, 'not-selected', s.reason, null));
    } else if (requireRedfish && redfishVerdict(requireRedfish(lease), false) !== 'reserve') {
      // The daemon holds it back until its device answers as a Redfish service.
      out.push(line(lease, 'pending-probe', 'pending-probe', null));
    } else {
      slot.push(out.length);
      out.push(line(lease, 'unchanged', 'reservation-matches', null));
      selected.push(lease);
    }
  }
  // One statement for the whole store, so the cap ranks new devices exactly once.
  const decisions = await classifyReservations(db, selected, cap);
  decisions.forEach((d, i) => {
    out[slot[i]] = line(d.lease, d.action, REASON_OF[d.action], d.hostId);
  });
  return out;
}
