/**
 * kea-dhcp4's configuration as `config-get` returns it, reduced to what decides whether Kea honours
 * a reservation: the host identifiers, the hosts databases, and per subnet its prefix, pools and
 * reservation flags resolved with Kea's own inheritance (subnet, then shared network, then global).
 * Pure; the answer is untrusted input, so every field is checked and a KeaConfigError names the first
 * bad one.
 */
import { parseIPv4 } from '../lease';

export class KeaConfigError extends Error {
  override name = 'KeaConfigError';
}

export type FlagName = 'global' | 'inSubnet' | 'outOfPool';
/** Where an effective flag came from; "default" is Kea's built-in value (none of the scopes set it). */
export type FlagSource = 'subnet' | 'shared-network' | 'global' | 'default';

export interface Flag {
  value: boolean;
  from: FlagSource;
}

export type ReservationFlags = Record<FlagName, Flag>;

export interface Range {
  first: number;
  last: number;
  text: string;
}

export interface KeaSubnet {
  id: number;
  /** The subnet's prefix: network address and mask, unsigned 32-bit. */
  network: number;
  mask: number;
  prefix: string;
  sharedNetwork: string | null;
  pools: Range[];
  flags: ReservationFlags;
}

export interface KeaDhcp4Config {
  /** host-reservation-identifiers, in Kea's order of preference ("auto" expanded). */
  identifiers: string[];
  /** The type of each hosts database ("postgresql", "mysql", ...). */
  hostsDatabases: string[];
  subnets: Map<number, KeaSubnet>;
}

/** The config key of each flag, and Kea's default (SimpleParser4::GLOBAL4_DEFAULTS). */
export const FLAG_KEYS: Record<FlagName, string> = {
  global: 'reservations-global',
  inSubnet: 'reservations-in-subnet',
  outOfPool: 'reservations-out-of-pool',
};
const FLAG_DEFAULTS: Record<FlagName, boolean> = { global: false, inSubnet: true, outOfPool: false };
const FLAGS = Object.keys(FLAG_KEYS) as FlagName[];

/** DHCPv4's default identifier list (CfgHostOperations::createConfig4); "auto" means the same. */
export const DEFAULT_IDENTIFIERS = ['hw-address', 'duid', 'circuit-id', 'client-id'];
const AUTO_IDENTIFIERS = ['hw-address', 'duid', 'circuit-id', 'client-id', 'flex-id'];

/**
 * The older `reservation-mode` (Kea up to 2.4; 2.6 rejects it) as Kea 2.2 translates it
 * (BaseNetworkParser::moveReservationMode): per scope, before inheritance, and refused next to any
 * of the new flags in the same scope. A flag a mode leaves unset is still inherited.
 */
const RESERVATION_MODES: Record<string, Partial<Record<FlagName, boolean>>> = {
  disabled: { global: false, inSubnet: false },
  off: { global: false, inSubnet: false },
  'out-of-pool': { global: false, inSubnet: true, outOfPool: true },
  global: { global: true, inSubnet: false },
  all: { global: false, inSubnet: true, outOfPool: false },
};

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(where: string, what: string): never {
  throw new KeaConfigError(`${where}: ${what}`);
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** The flags one scope sets itself (nothing inherited yet). */
export function scopeFlags(o: Obj, where: string): Partial<Record<FlagName, boolean>> {
  const out: Partial<Record<FlagName, boolean>> = {};
  for (const f of FLAGS) {
    const v = o[FLAG_KEYS[f]];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') bad(where, `"${FLAG_KEYS[f]}" is ${show(v)}, not a boolean`);
    out[f] = v;
  }
  const mode = o['reservation-mode'];
  if (mode === undefined) return out;
  if (Object.keys(out).length > 0) {
    bad(
      where,
      'both "reservation-mode" and one of "reservations-global", "reservations-in-subnet", "reservations-out-of-pool" (Kea refuses this)',
    );
  }
  if (typeof mode !== 'string' || !Object.hasOwn(RESERVATION_MODES, mode)) {
    return bad(where, `"reservation-mode" is ${show(mode)}, not one of ${Object.keys(RESERVATION_MODES).join(', ')}`);
  }
  return { ...RESERVATION_MODES[mode] };
}

/** Each flag from the innermost scope that sets it, else Kea's default. */
export function inheritFlags(
  subnet: Partial<Record<FlagName, boolean>>,
  shared: Partial<Record<FlagName, boolean>> | null,
  global: Partial<Record<FlagName, boolean>>,
): ReservationFlags {
  const pick = (f: FlagName): Flag => {
    if (subnet[f] !== undefined) return { value: subnet[f], from: 'subnet' };
    if (shared?.[f] !== undefined) return { value: shared[f], from: 'shared-network' };
    if (global[f] !== undefined) return { value: global[f], from: 'global' };
    return { value: FLAG_DEFAULTS[f], from: 'default' };
  };
  return { global: pick('global'), inSubnet: pick('inSubnet'), outOfPool: pick('outOfPool') };
}

function address(text: string, where: string): number {
  try {
    return parseIPv4(text);
  } catch {
    return bad(where, `${show(text)} is not an IPv4 address`);
  }
}

function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** "10.0.0.0/24" (host bits ignored, as an address inside the prefix names the same subnet). */
export function parsePrefix(text: unknown, where: string): { network: number; mask: number; prefix: string } {
  const m = typeof text === 'string' ? /^\s*([0-9.]+)\s*\/\s*(\d{1,2})\s*$/.exec(text) : null;
  if (!m || Number(m[2]) > 32) return bad(where, `"subnet" is ${show(text)}, not an IPv4 prefix such as 10.0.0.0/24`);
  const mask = maskOf(Number(m[2]));
  const network = (address(m[1], where) & mask) >>> 0;
  return { network, mask, prefix: `${formatAddress(network)}/${m[2]}` };
}

/** A pool as Kea writes it: "10.0.0.10 - 10.0.0.99" or "10.0.0.0/28". */
export function parsePool(text: unknown, where: string): Range {
  if (typeof text !== 'string') return bad(where, `"pool" is ${show(text)}, not a string`);
  const range = /^\s*([0-9.]+)\s*-\s*([0-9.]+)\s*$/.exec(text);
  if (range) {
    const first = address(range[1], where);
    const last = address(range[2], where);
    if (last < first) bad(where, `pool ${show(text)} ends before it starts`);
    return { first, last, text: `${range[1]}-${range[2]}` };
  }
  const prefix = /^\s*([0-9.]+)\s*\/\s*(\d{1,2})\s*$/.exec(text);
  if (prefix && Number(prefix[2]) <= 32) {
    const mask = maskOf(Number(prefix[2]));
    const first = (address(prefix[1], where) & mask) >>> 0;
    return { first, last: (first | ~mask) >>> 0, text: `${formatAddress(first)}/${prefix[2]}` };
  }
  return bad(where, `pool ${show(text)} is neither "first - last" nor a prefix`);
}

function formatAddress(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function list(v: unknown, where: string, key: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) bad(where, `"${key}" is not a list`);
  return v;
}

function identifiers(v: unknown): string[] {
  if (v === undefined) return [...DEFAULT_IDENTIFIERS];
  const ids = list(v, 'Dhcp4', 'host-reservation-identifiers');
  if (!ids.every((x) => typeof x === 'string')) bad('Dhcp4', '"host-reservation-identifiers" holds a value that is not a string');
  return ids.flatMap((x) => (x === 'auto' ? AUTO_IDENTIFIERS : [x]));
}

function hostsDatabases(d: Obj): string[] {
  const dbs = [
    ...(d['hosts-database'] === undefined ? [] : [d['hosts-database']]),
    ...list(d['hosts-databases'], 'Dhcp4', 'hosts-databases'),
  ];
  return dbs.map((db, i) => {
    if (!isObj(db) || typeof db.type !== 'string') return bad('Dhcp4', `hosts database ${i + 1} has no "type"`);
    return db.type;
  });
}

function subnet(
  s: unknown,
  where: string,
  shared: { name: string; flags: Partial<Record<FlagName, boolean>> } | null,
  global: Partial<Record<FlagName, boolean>>,
): KeaSubnet {
  if (!isObj(s)) return bad(where, 'is not a JSON object');
  const id = s.id;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 4294967294) {
    return bad(where, `"id" is ${show(id)}, not a subnet ID from 1 to 4294967294`);
  }
  const at = `${where} (id ${id})`;
  const pools = list(s.pools, at, 'pools').map((p, i) => {
    if (!isObj(p)) return bad(at, `pool ${i + 1} is not a JSON object`);
    return parsePool(p.pool, at);
  });
  return {
    id,
    ...parsePrefix(s.subnet, at),
    sharedNetwork: shared?.name ?? null,
    pools,
    flags: inheritFlags(scopeFlags(s, at), shared?.flags ?? null, global),
  };
}

/** `config-get`'s arguments ({"Dhcp4": {...}, "hash": ...}) as the model above. */
export function readDhcp4Config(args: unknown): KeaDhcp4Config {
  if (!isObj(args) || !isObj(args.Dhcp4)) bad('config-get', 'the answer has no "Dhcp4" object');
  const d = args.Dhcp4;
  const global = scopeFlags(d, 'Dhcp4');
  const subnets = new Map<number, KeaSubnet>();
  const add = (s: KeaSubnet, where: string): void => {
    if (subnets.has(s.id)) bad(where, `subnet id ${s.id} appears twice`);
    subnets.set(s.id, s);
  };
  list(d.subnet4, 'Dhcp4', 'subnet4').forEach((s, i) => {
    const where = `Dhcp4 subnet4[${i}]`;
    add(subnet(s, where, null, global), where);
  });
  list(d['shared-networks'], 'Dhcp4', 'shared-networks').forEach((n, i) => {
    const where = `Dhcp4 shared-networks[${i}]`;
    if (!isObj(n)) bad(where, 'is not a JSON object');
    const name = typeof n.name === 'string' ? n.name : bad(where, 'has no "name"');
    const shared = { name, flags: scopeFlags(n, `shared network ${show(name)}`) };
    list(n.subnet4, where, 'subnet4').forEach((s, j) => {
      const at = `shared network ${show(name)} subnet4[${j}]`;
      add(subnet(s, at, shared, global), at);
    });
  });
  return { identifiers: identifiers(d['host-reservation-identifiers']), hostsDatabases: hostsDatabases(d), subnets };
}
