import { checkSubnetId, formatIPv4, formatMac, parseHwaddr, parseIPv4 } from '../lease';
import { KEA_EMPTY, KEA_SUCCESS, KeaControlSocket, KeaTransportError } from './control-socket';

/** A DHCPv4 reservation as Kea's host_cmds hook shows it, validated. */
export interface KeaHost {
  /** null when the host is identified by something other than hw-address. */
  hwaddr: Buffer | null;
  subnetId: number;
  /** Reserved address (unsigned 32-bit), or null when none. */
  address: number | null;
  /** null for Kea's "" (no hostname). */
  hostname: string | null;
  userContext: Record<string, unknown> | null;
  /** Other settings of the host (classes, options, boot fields), carried over unchanged on an update. */
  extra: Record<string, unknown>;
}

/** What reservation-add and reservation-update take. */
export interface HostSpec {
  hwaddr: Buffer;
  subnetId: number;
  address: number;
  hostname: string | null;
  userContext: Record<string, unknown>;
  extra?: Record<string, unknown>;
}

/** The commands the writer needs; reservation-update is used when present, else del + add. */
export const REQUIRED_COMMANDS = ['reservation-add', 'reservation-get', 'reservation-del', 'reservation-get-by-address'] as const;

const IDENTIFIERS = ['hw-address', 'duid', 'circuit-id', 'client-id', 'flex-id'];
// Defaults Kea reports for a host that never set them: not worth carrying over.
const CARRIED: Record<string, (v: unknown) => boolean> = {
  'client-classes': (v) => Array.isArray(v) && v.length > 0,
  'option-data': (v) => Array.isArray(v) && v.length > 0,
  'next-server': (v) => typeof v === 'string' && v !== '0.0.0.0',
  'server-hostname': (v) => typeof v === 'string' && v !== '',
  'boot-file-name': (v) => typeof v === 'string' && v !== '',
};

function bad(what: string, why: string): never {
  throw new KeaTransportError(`${what}: ${why}`);
}

/** Parses one host from an answer; anything malformed is refused, naming the field. */
export function parseHost(v: unknown, what: string): KeaHost {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(what, 'a host is not a JSON object');
  const o = v as Record<string, unknown>;
  const subnet = o['subnet-id'];
  if (typeof subnet !== 'number') bad(what, 'a host has no numeric "subnet-id"');
  let subnetId: number;
  try {
    subnetId = checkSubnetId(subnet);
  } catch {
    bad(what, `"subnet-id" ${subnet} is out of range`);
  }
  let hwaddr: Buffer | null = null;
  if (o['hw-address'] !== undefined) {
    if (typeof o['hw-address'] !== 'string') bad(what, '"hw-address" is not a string');
    try {
      hwaddr = parseHwaddr(o['hw-address']);
    } catch (err) {
      bad(what, (err as Error).message);
    }
  } else if (!IDENTIFIERS.some((k) => typeof o[k] === 'string')) {
    bad(what, 'a host has no identifier');
  }
  let address: number | null = null;
  if (o['ip-address'] !== undefined) {
    if (typeof o['ip-address'] !== 'string') bad(what, '"ip-address" is not a string');
    try {
      address = parseIPv4(o['ip-address']) || null;
    } catch (err) {
      bad(what, (err as Error).message);
    }
  }
  const h = o.hostname;
  if (h !== undefined && typeof h !== 'string') bad(what, '"hostname" is not a string');
  const uc = o['user-context'];
  if (uc !== undefined && (typeof uc !== 'object' || uc === null || Array.isArray(uc))) bad(what, '"user-context" is not a JSON object');
  const extra: Record<string, unknown> = {};
  for (const [k, keep] of Object.entries(CARRIED)) if (keep(o[k])) extra[k] = o[k];
  return {
    hwaddr,
    subnetId,
    address,
    hostname: typeof h === 'string' && h !== '' ? h : null,
    userContext: (uc as Record<string, unknown> | undefined) ?? null,
    extra,
  };
}

function hostsOf(args: unknown, what: string): KeaHost[] {
  const list = (args as { hosts?: unknown } | null | undefined)?.hosts;
  if (list === undefined) return [];
  if (!Array.isArray(list)) bad(what, '"hosts" is not a list');
  return list.map((h) => parseHost(h, what));
}

function reservationOf(s: HostSpec): Record<string, unknown> {
  return {
    ...(s.extra ?? {}),
    'subnet-id': s.subnetId,
    'hw-address': formatMac(s.hwaddr),
    'ip-address': formatIPv4(s.address),
    ...(s.hostname !== null ? { hostname: s.hostname } : {}),
    'user-context': s.userContext,
  };
}

/** The host_cmds commands, typed. Errors: KeaTransportError (unreachable, malformed), KeaCommandError (Kea said no). */
export class HostCmds {
  constructor(readonly socket: KeaControlSocket) {}

  async listCommands(): Promise<string[]> {
    const a = await this.socket.call('list-commands');
    if (!Array.isArray(a.arguments) || !a.arguments.every((c) => typeof c === 'string')) {
      bad('list-commands', 'the answer is not a list of command names');
    }
    return a.arguments;
  }

  /** The host reserved for this hardware address in this subnet, if any. */
  async get(hwaddr: Buffer, subnetId: number): Promise<KeaHost | null> {
    const a = await this.socket.call('reservation-get', {
      'subnet-id': subnetId,
      'identifier-type': 'hw-address',
      identifier: formatMac(hwaddr),
    });
    return a.result === KEA_SUCCESS ? parseHost(a.arguments, 'reservation-get') : null;
  }

  /** Every host reserving this address in this subnet. */
  async getByAddress(address: number, subnetId: number): Promise<KeaHost[]> {
    const a = await this.socket.call('reservation-get-by-address', { 'ip-address': formatIPv4(address), 'subnet-id': subnetId });
    return a.result === KEA_SUCCESS ? hostsOf(a.arguments, 'reservation-get-by-address') : [];
  }

  /** Whether Kea refuses a second reservation for one address (Dhcp4 "ip-reservations-unique", default true). */
  async ipReservationsUnique(): Promise<boolean> {
    const a = await this.socket.call('config-get');
    const dhcp4 = (a.arguments as { Dhcp4?: unknown } | null | undefined)?.Dhcp4;
    if (typeof dhcp4 !== 'object' || dhcp4 === null) bad('config-get', 'the answer has no "Dhcp4" map');
    const v = (dhcp4 as Record<string, unknown>)['ip-reservations-unique'];
    if (v !== undefined && typeof v !== 'boolean') bad('config-get', '"ip-reservations-unique" is not a boolean');
    return v !== false;
  }

  /**
   * Every DHCPv4 host Kea knows (configuration file and hosts databases), a page at a time, in
   * host_cmds' own paging order (source-index, then host id).
   */
  async *allHosts(pageSize = 1000): AsyncGenerator<KeaHost[]> {
    let from = 0;
    let sourceIndex = 0;
    for (;;) {
      const a = await this.socket.call('reservation-get-page', { limit: pageSize, 'source-index': sourceIndex, from });
      if (a.result === KEA_EMPTY) return;
      yield hostsOf(a.arguments, 'reservation-get-page');
      const next = (a.arguments as { next?: { from?: unknown; 'source-index'?: unknown } }).next;
      const f = next?.from;
      const i = next?.['source-index'];
      if (
        typeof f !== 'number' ||
        typeof i !== 'number' ||
        !Number.isInteger(f) ||
        !Number.isInteger(i) ||
        i < sourceIndex ||
        (i === sourceIndex && f <= from)
      ) {
        bad('reservation-get-page', '"next" is missing or does not move forward');
      }
      from = f;
      sourceIndex = i;
    }
  }

  async add(spec: HostSpec): Promise<void> {
    await this.socket.call('reservation-add', { reservation: reservationOf(spec) });
  }

  async update(spec: HostSpec): Promise<void> {
    await this.socket.call('reservation-update', { reservation: reservationOf(spec) });
  }

  /** True when a host was deleted. */
  async del(hwaddr: Buffer, subnetId: number): Promise<boolean> {
    const a = await this.socket.call('reservation-del', {
      'subnet-id': subnetId,
      'identifier-type': 'hw-address',
      identifier: formatMac(hwaddr),
    });
    return a.result === KEA_SUCCESS;
  }
}
