/** What the API writer last learned about one device (hwaddr+subnet) from Kea. */
export type Known =
  | { kind: 'reserved'; address: number; hostname: string | null }
  /** Negative answers are re-checked after a while: an operator may fix them. */
  | { kind: 'foreign' | 'conflict'; address: number; until: number };

/**
 * A bounded map, least recently used out first, of what is known to be in Kea: a renewal that
 * matches it needs no call at all. Entries are dropped whenever a call about the device fails.
 */
export class KnownReservations {
  private readonly map = new Map<string, Known>();

  constructor(readonly limit: number) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string, now = Date.now()): Known | undefined {
    const k = this.map.get(key);
    if (k === undefined) return undefined;
    if (k.kind !== 'reserved' && k.until <= now) {
      this.map.delete(key);
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, k);
    return k;
  }

  set(key: string, k: Known): void {
    this.map.delete(key);
    this.map.set(key, k);
    while (this.map.size > this.limit) this.map.delete(this.map.keys().next().value as string);
  }

  delete(key: string): void {
    this.map.delete(key);
  }
}
