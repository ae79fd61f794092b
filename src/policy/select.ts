/**
 * Which leases become reservations: a pure function of the lease and the policy, shared by the
 * daemon, --dry-run and `plan` so they cannot disagree. Deny rules win over allow rules; each
 * allow list that is not empty must match. The per-subnet cap is not here: it depends on what is
 * already in `hosts`, so the write statement enforces it (db/reservations.ts).
 */
import type { Lease } from '../lease';
import { Cidr, compileHostnamePattern, inCidr, macHasPrefix, MacPrefix, parseCidr, parseMacPrefix } from './rules';

export interface PolicyConfig {
  /** Empty: every subnet. */
  subnetIds: number[];
  allowMacPrefix: string[];
  denyMacPrefix: string[];
  allowHostname: string[];
  denyHostname: string[];
  allowAddress: string[];
}

export interface Policy {
  subnets: ReadonlySet<number>;
  allowMac: MacPrefix[];
  denyMac: MacPrefix[];
  allowHostname: RegExp[];
  denyHostname: RegExp[];
  allowAddress: Cidr[];
}

export type NotSelectedReason =
  | 'subnet'
  | 'mac-denied'
  | 'hostname-denied'
  | 'mac-not-allowed'
  | 'hostname-not-allowed'
  | 'address-not-allowed'
  // kea-dhcp4's configuration would not honour a reservation in the lease's subnet (policy/kea.ts).
  | 'kea-not-honoured';

export type Selection = { selected: true } | { selected: false; reason: NotSelectedReason };

/** Parses and compiles every rule once; throws UsageError on the first bad one. */
export function compilePolicy(c: PolicyConfig): Policy {
  return {
    subnets: new Set(c.subnetIds),
    allowMac: c.allowMacPrefix.map(parseMacPrefix),
    denyMac: c.denyMacPrefix.map(parseMacPrefix),
    allowHostname: c.allowHostname.map(compileHostnamePattern),
    denyHostname: c.denyHostname.map(compileHostnamePattern),
    allowAddress: c.allowAddress.map(parseCidr),
  };
}

export const SELECT_ALL: Policy = compilePolicy({
  subnetIds: [],
  allowMacPrefix: [],
  denyMacPrefix: [],
  allowHostname: [],
  denyHostname: [],
  allowAddress: [],
});

const SELECTED: Selection = { selected: true };
const no = (reason: NotSelectedReason): Selection => ({ selected: false, reason });

export function selectLease(lease: Pick<Lease, 'hwaddr' | 'hostname' | 'address' | 'subnetId'>, p: Policy): Selection {
  if (p.subnets.size > 0 && !p.subnets.has(lease.subnetId)) return no('subnet');
  if (p.denyMac.some((m) => macHasPrefix(lease.hwaddr, m))) return no('mac-denied');
  const host = lease.hostname;
  if (host !== null && p.denyHostname.some((r) => r.test(host))) return no('hostname-denied');
  if (p.allowMac.length > 0 && !p.allowMac.some((m) => macHasPrefix(lease.hwaddr, m))) return no('mac-not-allowed');
  // A lease without a hostname cannot match an allow pattern.
  if (p.allowHostname.length > 0 && (host === null || !p.allowHostname.some((r) => r.test(host)))) return no('hostname-not-allowed');
  if (p.allowAddress.length > 0 && !p.allowAddress.some((c) => inCidr(lease.address, c))) return no('address-not-allowed');
  return SELECTED;
}

/** One line describing the policy, for the start-up log. */
export function describePolicy(p: Policy): Record<string, unknown> {
  return {
    subnet_ids: [...p.subnets],
    allow_mac_prefix: p.allowMac.map((m) => m.text),
    deny_mac_prefix: p.denyMac.map((m) => m.text),
    allow_hostname: p.allowHostname.map((r) => r.source),
    deny_hostname: p.denyHostname.map((r) => r.source),
    allow_address: p.allowAddress.map((c) => c.text),
  };
}
