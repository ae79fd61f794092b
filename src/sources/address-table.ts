/**
 * IPv4 address -> number, in two typed arrays (open addressing, linear probing): about 24 bytes per
 * address at most, where a Map of objects costs hundreds. Holds a million addresses in tens of MB.
 */
export class AddressTable {
  private keys: Uint32Array;
  private vals: Float64Array;
  private mask: number;
  private count = 0;
  // Key 0 marks an empty slot, so address 0 lives apart.
  private zero: number | undefined;

  constructor(capacity = 1 << 12) {
    const size = 1 << Math.ceil(Math.log2(Math.max(16, capacity)));
    this.keys = new Uint32Array(size);
    this.vals = new Float64Array(size);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count + (this.zero === undefined ? 0 : 1);
  }

  private slot(key: number): number {
    let i = Math.imul(key, 0x9e3779b1) & this.mask;
    while (this.keys[i] !== 0 && this.keys[i] !== key) i = (i + 1) & this.mask;
    return i;
  }

  set(address: number, value: number): void {
    if (address === 0) {
      this.zero = value;
      return;
    }
    const i = this.slot(address);
    if (this.keys[i] === 0) {
      this.keys[i] = address;
      this.count++;
    }
    this.vals[i] = value;
    if (this.count * 2 > this.keys.length) this.grow();
  }

  get(address: number): number | undefined {
    if (address === 0) return this.zero;
    const i = this.slot(address);
    return this.keys[i] === 0 ? undefined : this.vals[i];
  }

  private grow(): void {
    const [keys, vals] = [this.keys, this.vals];
    this.keys = new Uint32Array(keys.length * 2);
    this.vals = new Float64Array(keys.length * 2);
    this.mask = this.keys.length - 1;
    for (let j = 0; j < keys.length; j++) {
      if (keys[j] === 0) continue;
      const i = this.slot(keys[j]);
      this.keys[i] = keys[j];
      this.vals[i] = vals[j];
    }
  }
}
