/**
 * Devices the writer already decided not to reserve, so a catch-up need not queue them again: an
 * operator's row covers them (`foreign`) or their subnet is at --max-reservations-per-subnet
 * (`limit`). Neither has a reservation for its address, so the catch-up query finds them every time;
 * without this memory every overflow or stale recheck would push all of them through the writer again.
 */
import type { ReservationResult } from '../domain/outcomes';
import { Lease, leaseKey } from '../lease';

export type Decision = 'foreign' | 'limit';

interface Decided {
  address: number;
  decision: Decision;
  /** For `limit`: the subnet's cap epoch when decided; a creation there since means there may be room. */
  epoch: number;
}

/** Bounded like the writer's other memories: past it, everything is forgotten and re-derived once. */
export const DECIDED_MAX = 100_000;

export class DecidedLeases {
  private readonly byDevice = new Map<string, Decided>();
  /** Bumped by each creation in the subnet: its `limit` decisions no longer hold. */
  private readonly capEpoch = new Map<number, number>();

  constructor(private readonly max = DECIDED_MAX) {}

  get size(): number {
    return this.byDevice.size;
  }

  /** Learns from a batch's outcomes: foreign and limit are remembered, any other outcome forgets the device. */
  learn(results: readonly ReservationResult[]): void {
    for (const { lease, outcome } of results) {
      const key = leaseKey(lease);
      if (outcome === 'foreign' || outcome === 'limit') {
        if (!this.byDevice.has(key) && this.byDevice.size >= this.max) this.byDevice.clear();
        this.byDevice.set(key, { address: lease.address, decision: outcome, epoch: this.epoch(lease.subnetId) });
      } else {
        this.byDevice.delete(key);
        if (outcome === 'created') this.capEpoch.set(lease.subnetId, this.epoch(lease.subnetId) + 1);
      }
    }
  }

  /** The decision that still holds for this lease (same MAC, subnet and address; for limit, no room seen since), or null. */
  holds(lease: Lease): Decision | null {
    const d = this.byDevice.get(leaseKey(lease));
    if (!d || d.address !== lease.address) return null;
    if (d.decision === 'limit' && d.epoch !== this.epoch(lease.subnetId)) return null;
    return d.decision;
  }

  forgetAll(): void {
    this.byDevice.clear();
    this.capEpoch.clear();
  }

  private epoch(subnetId: number): number {
    return this.capEpoch.get(subnetId) ?? 0;
  }
}
