/**
 * The syntax of the selection rules: MAC prefixes, hostname patterns, address ranges. Pure; every
 * refusal is a UsageError naming the value, since these come from flags, the environment and the
 * config file.
 */
import { UsageError } from '../errors';
import { formatIPv4, parseIPv4 } from '../lease';

export interface MacPrefix {
  /** 1 to 6 octets. */
  bytes: Buffer;
  text: string;
}

export interface Cidr {
  /** Network address, unsigned 32-bit. */
  network: number;
  /** Netmask, unsigned 32-bit. */
  mask: number;
  text: string;
}

/** "0c:c4:7a", "0C-C4-7A", "0cc47a": 1 to 6 octets. */
export function parseMacPrefix(text: string): MacPrefix {
  const t = text.trim().toLowerCase();
  const parts = /[:-]/.test(t) ? t.split(/[:-]/) : (t.match(/../g) ?? []);
  const hex = parts.join('');
  if (
    parts.length < 1 ||
    parts.length > 6 ||
    !parts.every((p) => /^[0-9a-f]{2}$/.test(p)) ||
    hex.length !== t.replace(/[:-]/g, '').length
  ) {
    throw new UsageError(`${JSON.stringify(text)} is not a MAC prefix of 1 to 6 octets such as 0c:c4:7a`);
  }
  const bytes = Buffer.from(hex, 'hex');
  return { bytes, text: parts.join(':') };
}

export function macHasPrefix(mac: Buffer, prefix: MacPrefix): boolean {
  return mac.length >= prefix.bytes.length && mac.subarray(0, prefix.bytes.length).equals(prefix.bytes);
}

/** "10.0.200.0/24"; a bare address is a /32. Host bits must be zero, so a typo is not silently widened. */
export function parseCidr(text: string): Cidr {
  const m = /^\s*([0-9.]+)(?:\/(\d{1,2}))?\s*$/.exec(text);
  const bad = (): never => {
    throw new UsageError(`${JSON.stringify(text)} is not an IPv4 CIDR range such as 10.0.200.0/24`);
  };
  if (!m) return bad();
  let network: number;
  try {
    network = parseIPv4(m[1]);
  } catch {
    return bad();
  }
  const bits = m[2] === undefined ? 32 : Number(m[2]);
  if (bits > 32) return bad();
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  if ((network & mask) >>> 0 !== network) {
    throw new UsageError(`${JSON.stringify(text)} has host bits set; did you mean ${formatIPv4((network & mask) >>> 0)}/${bits}?`);
  }
  return { network, mask, text: `${formatIPv4(network)}/${bits}` };
}

export function inCidr(address: number, c: Cidr): boolean {
  return (address & c.mask) >>> 0 === c.network;
}

/**
 * A hostname pattern: a JavaScript regular expression, matched case-insensitively (DNS names are),
 * anchored only where the operator writes ^ or $. Compiled once.
 */
export function compileHostnamePattern(text: string): RegExp {
  if (text.length === 0) throw new UsageError('a hostname pattern must not be empty');
  try {
    return new RegExp(text, 'i');
  } catch (err) {
    throw new UsageError(`${JSON.stringify(text)} is not a valid regular expression: ${(err as Error).message}`);
  }
}
