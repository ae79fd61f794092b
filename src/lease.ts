/**
 * The Lease type and the rules every lease passes before anything trusts it. DHCP clients choose
 * their own hostnames and relays forge MACs: this is the one place that input becomes data.
 */

export type LeaseSource = 'memfile' | 'database';

/** A live DHCPv4 lease, validated. */
export interface Lease {
  /** IPv4 address as an unsigned 32-bit integer, as Kea stores it. */
  address: number;
  /** Hardware address, 1 to 20 bytes (Kea's HWAddr::MAX_HWADDR_LEN). */
  hwaddr: Buffer;
  subnetId: number;
  /** Sanitised hostname, or null when the client sent none. */
  hostname: string | null;
  source: LeaseSource;
  /** When the lease was committed (database: cltt) or read (file), epoch ms; for the latency histogram. */
  committedAt?: number;
}

/** Raw fields as a source found them, before validation. */
export interface LeaseFields {
  address: number;
  hwaddr: Buffer;
  subnetId: number;
  hostname: string | null;
  validLifetime: number;
  /** Expiry in epoch seconds. */
  expire: number;
  state: number;
}

export type Classified =
  | { kind: 'live'; lease: Lease }
  | { kind: 'ignored'; reason: 'deleted' | 'not-default-state' | 'expired' | 'no-hwaddr' | 'no-subnet' }
  // A live lease outside --subnet-id: the selection policy's "subnet" rule, applied early.
  | { kind: 'not-selected'; reason: 'subnet'; subnetId: number };

export class InvalidLeaseError extends Error {
  override name = 'InvalidLeaseError';
}

const MAX_HWADDR = 20;
export const MAX_HOSTNAME_BYTES = 255;

export function parseIPv4(text: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) throw new InvalidLeaseError(`address ${JSON.stringify(text.slice(0, 64))} is not a dotted IPv4 address`);
  const octets = m.slice(1).map(Number);
  if (octets.some((o, i) => o > 255 || (m[i + 1].length > 1 && m[i + 1].startsWith('0')))) {
    throw new InvalidLeaseError(`address ${JSON.stringify(text)} is not a valid IPv4 address`);
  }
  return ((octets[0] << 24) >>> 0) + (octets[1] << 16) + (octets[2] << 8) + octets[3];
}

/** Why no DHCP server can lease this address, or null when it can be leased. */
export function unleasableReason(n: number): string | null {
  const first = n >>> 24;
  if (n === 0xffffffff) return 'it is the limited broadcast address';
  if (first === 0) return 'it is in 0.0.0.0/8, "this network" (RFC 1122)';
  if (first === 127) return 'it is a loopback address (127.0.0.0/8)';
  if (first >= 224 && first <= 239) return 'it is a multicast address (224.0.0.0/4)';
  if (first >= 240) return 'it is reserved (240.0.0.0/4)';
  return null;
}

/**
 * The one check every source applies to a lease's address (CSV rows, NOTIFY payloads, catch-up
 * rows): an unsigned 32-bit number that a DHCP server could actually lease.
 */
export function checkLeasableAddress(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidLeaseError(`address ${n} is out of IPv4 range`);
  const why = unleasableReason(n);
  if (why) throw new InvalidLeaseError(`address ${formatIPv4(n)} cannot be leased: ${why}`);
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** "aa:bb:cc:dd:ee:ff" (Kea's CSV), "aabbccddeeff" (NOTIFY payload hex) or "" (no hardware address). */
export function parseHwaddr(text: string): Buffer {
  const hex = text.includes(':')
    ? text
        .split(':')
        .map((p) => (p.length === 1 ? '0' + p : p))
        .join('')
    : text;
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) {
    throw new InvalidLeaseError(`hwaddr ${JSON.stringify(text.slice(0, 64))} is not hexadecimal`);
  }
  if (hex.length / 2 > MAX_HWADDR) throw new InvalidLeaseError(`hwaddr is longer than ${MAX_HWADDR} bytes`);
  return Buffer.from(hex, 'hex');
}

/** "aa:bb:cc:dd:ee:ff", for logs and records. */
export function formatMac(hw: Buffer): string {
  return [...hw].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** "aa-bb-cc-dd-ee-ff": safe as a file name by construction (hex digits and dashes only). */
export function macFileStem(hw: Buffer): string {
  return [...hw].map((b) => b.toString(16).padStart(2, '0')).join('-');
}

export function checkSubnetId(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidLeaseError(`subnet_id ${n} is out of range`);
  return n;
}

// C0 controls, DEL and C1 controls; also the Unicode line/paragraph separators that break log lines.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * Hostnames: strip control characters, repair invalid UTF-8 (U+FFFD), keep at most 255 bytes
 * without splitting a character. Empty becomes null. The result is bound as a parameter, never
 * spliced into SQL, and never used as a path.
 */
export function sanitizeHostname(input: string | Buffer | null | undefined): string | null {
  if (input === null || input === undefined) return null;
  const text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: false }).decode(input);
  // toWellFormed() replaces lone surrogates, which PostgreSQL would reject as invalid UTF-8.
  let clean = text.toWellFormed().replace(CONTROL, '').trim();
  if (Buffer.byteLength(clean, 'utf8') > MAX_HOSTNAME_BYTES) {
    let bytes = 0;
    let cut = 0;
    for (const ch of clean) {
      const len = Buffer.byteLength(ch, 'utf8');
      if (bytes + len > MAX_HOSTNAME_BYTES) break;
      bytes += len;
      cut += ch.length;
    }
    clean = clean.slice(0, cut);
  }
  return clean === '' ? null : clean;
}

/** Decides whether raw lease fields are a live lease in a selected subnet. */
export function classifyLease(
  f: LeaseFields,
  source: LeaseSource,
  subnets: ReadonlySet<number>,
  nowSeconds: number = Date.now() / 1000,
): Classified {
  if (f.validLifetime === 0) return { kind: 'ignored', reason: 'deleted' };
  if (f.state !== 0) return { kind: 'ignored', reason: 'not-default-state' };
  if (f.expire <= nowSeconds) return { kind: 'ignored', reason: 'expired' };
  if (f.hwaddr.length === 0) return { kind: 'ignored', reason: 'no-hwaddr' };
  if (f.subnetId === 0) return { kind: 'ignored', reason: 'no-subnet' };
  if (subnets.size > 0 && !subnets.has(f.subnetId)) return { kind: 'not-selected', reason: 'subnet', subnetId: f.subnetId };
  return {
    kind: 'live',
    lease: { address: f.address, hwaddr: f.hwaddr, subnetId: f.subnetId, hostname: sanitizeHostname(f.hostname), source },
  };
}

/** The key under which later news about the same device in the same subnet replaces earlier news. */
export function leaseKey(l: Pick<Lease, 'hwaddr' | 'subnetId'>): string {
  return `${l.hwaddr.toString('hex')}/${l.subnetId}`;
}
