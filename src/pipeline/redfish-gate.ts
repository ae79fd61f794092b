/**
 * --require-redfish: holds a selected lease back, without losing it, until its device has been
 * probed, then hands it to the queue again when the device answered as a Redfish service. The rest
 * of the pipeline never waits: a held lease's waiters run at once (file mode's read position moves
 * on; a device held when the monitor stops is seen again at its next renewal or reconciliation).
 */
import type { DiscoveryWriter } from '../discovery';
import { formatIPv4, formatMac, Lease, macFileStem } from '../lease';
import type { Logger } from '../logger';
import type { LeaseQueue } from './queue';
import { redfishVerdict, RedfishVerdict } from '../policy/redfish';
import type { RedfishProber } from '../redfish/prober';

export class RedfishGate {
  /** The latest lease of each device held for its probe. */
  private readonly held = new Map<string, Lease>();

  constructor(
    private readonly prober: RedfishProber,
    private readonly queue: LeaseQueue,
    private readonly discovery: DiscoveryWriter,
    private readonly log: Logger,
  ) {
    prober.subscribe((lease, info) => this.probed(lease, info.status === 'present'));
  }

  /** Leases held for a probe now. */
  get size(): number {
    return this.held.size;
  }

  /** `reserve`: write it now; `pending-probe`: held (and probed); `not-redfish`: done with. */
  admit(lease: Lease): RedfishVerdict {
    let info = this.prober.result(lease);
    if (info === null) {
      // A device reserved before a restart: its record says what its probe found (as `plan` reads it).
      const recorded = this.discovery.redfishOf(lease.hwaddr);
      if (recorded?.status === 'present') this.prober.remember(lease, recorded);
      info = recorded?.status === 'present' ? recorded : null;
    }
    const verdict = redfishVerdict(info?.status ?? null, this.prober.probing(lease) ? false : this.prober.settled(lease));
    if (verdict !== 'pending-probe') return verdict;
    const stem = macFileStem(lease.hwaddr);
    this.held.set(stem, lease);
    // The lease file is Kea's own; a NOTIFY (source database) is checked against lease4 first.
    this.prober.request(lease, lease.source === 'memfile');
    if (!this.prober.probing(lease)) this.held.delete(stem); // not probed (no live lease, or too many pending)
    return verdict;
  }

  private probed(lease: Lease, present: boolean): void {
    const stem = macFileStem(lease.hwaddr);
    const held = this.held.get(stem);
    if (!held) return;
    this.held.delete(stem);
    if (!present) return;
    // Back into the queue: the writer's next batch reserves it (the gate now lets it through).
    if (!this.queue.offer(held)) {
      this.log.info('Queue full: a Redfish device is reserved at its next lease', {
        mac: formatMac(held.hwaddr),
        ip: formatIPv4(held.address),
      });
    }
  }
}
