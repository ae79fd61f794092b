/**
 * The pipeline's front door: the selection policy, then kea-dhcp4's verdicts, before the queue. A
 * lease that will not be reserved is counted, logged at debug and done with here, so it takes no
 * queue slot, and a catch-up or reconcile pass over many such leases costs the writer nothing.
 */
import { formatIPv4, formatMac, Lease } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import type { LeaseGate } from '../policy/kea';
import { Policy, selectLease } from '../policy/select';
import type { HandledGroup } from './handled-group';
import type { LeaseQueue } from './queue';

export interface IntakeSettings {
  /** Which leases to reserve. */
  policy: Policy;
  /** After the policy: refuses leases in subnets kea-dhcp4 would not honour a reservation in (--kea-control-socket). */
  keaGate?: LeaseGate;
}

/** What a source hands its live leases to. */
export interface LeaseSink {
  /** Resolves once the lease is handled (written, or not selected). */
  put(lease: Lease): Promise<void>;
  /** Resolves once the lease is queued (or not selected), as one of `group`'s (which counts it until handled). */
  enqueueInto(lease: Lease, group: HandledGroup): Promise<void>;
  /** Without waiting; false when the queue is full (the lease is then dropped, to be caught up). */
  offer(lease: Lease): boolean;
  /** Resolves once at most `n` leases wait in the queue (or at once after a stop). */
  whenAtMost(n: number): Promise<void>;
  readonly limit: number;
}

export class LeaseIntake implements LeaseSink {
  constructor(
    private readonly queue: LeaseQueue,
    private readonly settings: IntakeSettings,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  get limit(): number {
    return this.queue.limit;
  }

  put(lease: Lease): Promise<void> {
    return this.selected(lease) ? this.queue.put(lease) : Promise.resolve();
  }

  async enqueueInto(lease: Lease, group: HandledGroup): Promise<void> {
    if (this.selected(lease)) await this.queue.enqueueInto(lease, group);
  }

  offer(lease: Lease): boolean {
    return this.selected(lease) ? this.queue.offer(lease) : true;
  }

  whenAtMost(n: number): Promise<void> {
    return this.queue.whenAtMost(n);
  }

  private selected(lease: Lease): boolean {
    const chosen = selectLease(lease, this.settings.policy);
    const s = chosen.selected && this.settings.keaGate ? this.settings.keaGate.admit(lease) : chosen;
    if (s.selected) return true;
    notSelected(lease, s.reason, this.metrics, this.log);
    return false;
  }
}

/** A lease left out (by the policy, Kea's verdict or the Redfish hold): counted by reason, logged at debug. */
export function notSelected(lease: Lease, reason: string, metrics: Metrics, log: Logger): void {
  // Not written, so not checked against lease4: a database lease's subnet stays unconfirmed here.
  if (lease.source === 'memfile') metrics.subnets.confirm(lease.subnetId);
  metrics.inc(...M.notSelected, { reason, subnet_id: lease.subnetId });
  // A reconcile pass meets every lease the policy leaves out: format their fields only when the line is written.
  if (!log.isDebugEnabled()) return;
  log.debug('Lease not selected for a reservation', {
    mac: formatMac(lease.hwaddr),
    ip: formatIPv4(lease.address),
    hostname: lease.hostname,
    subnet_id: lease.subnetId,
    reason,
  });
}
