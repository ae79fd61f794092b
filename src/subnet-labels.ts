/** The subnet_id label value that counts every subnet not (yet) known to be real. */
export const OTHER_SUBNET = 'other';

/** Most subnet_id label values learned while running (configured subnets come on top). */
export const MAX_SUBNET_LABELS = 1000;

/**
 * Which subnet ids may become a metric label. A NOTIFY payload names any subnet it likes, so a
 * subnet id is a label only when it is configured (--subnet-id) or confirmed real (lease4 held the
 * lease, or Kea's own lease file named it), and at most `cap` are learned: every series costs
 * memory and /metrics bytes for good. Everything else is counted under "other".
 */
export class SubnetLabels {
  private readonly known = new Set<number>();
  private learned = 0;

  constructor(
    configured: Iterable<number>,
    readonly cap = MAX_SUBNET_LABELS,
  ) {
    for (const id of configured) this.known.add(id);
  }

  /** A subnet shown to be real; ignored once `cap` subnets have been learned. */
  confirm(id: number): void {
    if (this.known.has(id) || this.learned >= this.cap) return;
    this.known.add(id);
    this.learned++;
  }

  label(id: number | string): string {
    const n = Number(id);
    return this.known.has(n) ? String(n) : OTHER_SUBNET;
  }
}
