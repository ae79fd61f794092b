/**
 * Would kea-dhcp4 honour an hw-address reservation the monitor writes in a subnet? A pure verdict
 * per subnet from the configuration config-get returned, and a check of one reserved address
 * against the subnet's prefix and pools. Follows Kea's allocation engine: a subnet's own
 * reservations are looked up only with reservations-in-subnet, only by the identifiers in
 * host-reservation-identifiers, and with reservations-out-of-pool an in-pool reserved address is
 * ignored (AllocEngine::findReservation, hasAddressReservation).
 */
import { formatIPv4 } from '../lease';
import { FlagSource, KeaDhcp4Config, KeaSubnet } from './config';

export const VERDICT_REASONS = ['no-hosts-database', 'no-hw-address-identifier', 'reservations-disabled', 'global-only'] as const;
export type VerdictReason = (typeof VERDICT_REASONS)[number];
export type Verdict = 'honoured' | VerdictReason;

export interface SubnetVerdict {
  subnetId: number;
  prefix: string;
  sharedNetwork: string | null;
  verdict: Verdict;
  /** Why, in words, naming the parameters and the scope each came from. */
  detail: string;
  /** reservations-out-of-pool is on: reserved addresses inside a pool are ignored. */
  outOfPool: boolean;
}

/** Where the monitor's reservations go: the sql writer's rows are read only by a PostgreSQL hosts database. */
export type WriterKind = 'sql' | 'kea-api';

function scope(from: FlagSource): string {
  return from === 'default' ? "Kea's default" : `set at ${from} level`;
}

function hostsDatabaseProblem(cfg: KeaDhcp4Config, writer: WriterKind): string | null {
  if (writer === 'sql' && !cfg.hostsDatabases.includes('postgresql')) {
    return cfg.hostsDatabases.length === 0
      ? 'kea-dhcp4 has no hosts database: it never reads the hosts table'
      : `kea-dhcp4's hosts databases (${cfg.hostsDatabases.join(', ')}) include no PostgreSQL one: it never reads the hosts table`;
  }
  if (cfg.hostsDatabases.length === 0) return 'kea-dhcp4 has no hosts database: reservation-add has nowhere to store a host';
  return null;
}

export function subnetVerdict(cfg: KeaDhcp4Config, subnet: KeaSubnet, writer: WriterKind): SubnetVerdict {
  const { inSubnet, global, outOfPool } = subnet.flags;
  const v = (verdict: Verdict, detail: string): SubnetVerdict => ({
    subnetId: subnet.id,
    prefix: subnet.prefix,
    sharedNetwork: subnet.sharedNetwork,
    verdict,
    detail,
    outOfPool: inSubnet.value && outOfPool.value,
  });
  const db = hostsDatabaseProblem(cfg, writer);
  if (db) return v('no-hosts-database', db);
  if (!cfg.identifiers.includes('hw-address')) {
    return v(
      'no-hw-address-identifier',
      `host-reservation-identifiers is [${cfg.identifiers.join(', ')}]: Kea never looks a client up by its hardware address`,
    );
  }
  if (!inSubnet.value) {
    const why = `reservations-in-subnet is false (${scope(inSubnet.from)})`;
    return global.value
      ? v('global-only', `${why} and reservations-global is true: Kea uses only global reservations, not this subnet's`)
      : v('reservations-disabled', `${why} and reservations-global is false (${scope(global.from)}): Kea ignores every reservation`);
  }
  return v(
    'honoured',
    outOfPool.value ? `reservations-out-of-pool is true (${scope(outOfPool.from)}): a reserved address inside a pool is ignored` : '',
  );
}

/** Every subnet's verdict, by subnet id. */
export function subnetVerdicts(cfg: KeaDhcp4Config, writer: WriterKind): Map<number, SubnetVerdict> {
  const out = new Map<number, SubnetVerdict>();
  for (const s of cfg.subnets.values()) out.set(s.id, subnetVerdict(cfg, s, writer));
  return out;
}

export type AddressProblem = 'outside-subnet' | 'in-pool-out-of-pool';

/** Why Kea would not hand out this reserved address in this subnet, or null when it would. */
export function reservedAddressProblem(subnet: KeaSubnet, address: number): { problem: AddressProblem; detail: string } | null {
  if ((address & subnet.mask) >>> 0 !== subnet.network) {
    return { problem: 'outside-subnet', detail: `${formatIPv4(address)} is outside subnet ${subnet.id}'s prefix ${subnet.prefix}` };
  }
  const { inSubnet, outOfPool } = subnet.flags;
  if (inSubnet.value && outOfPool.value) {
    const pool = subnet.pools.find((p) => address >= p.first && address <= p.last);
    if (pool) {
      return {
        problem: 'in-pool-out-of-pool',
        detail: `${formatIPv4(address)} is inside pool ${pool.text} and reservations-out-of-pool is true (${scope(outOfPool.from)}): Kea ignores the reserved address`,
      };
    }
  }
  return null;
}
