import type { Policy } from '../policy/select';

/**
 * The part of the selection policy a lease4 query can apply itself: MAC prefixes and address
 * ranges (hostname patterns are JavaScript regular expressions and stay with the intake, which
 * still applies the whole policy to every row returned). A reconcile pass over a large fleet then
 * reads only the leases the policy may select, not every live lease.
 */
export interface LeasePrefilter {
  denyMac: Buffer[];
  allowMac: Buffer[];
  allowNetwork: number[];
  allowMask: number[];
}

/** null: the policy has no MAC or address rule, so there is nothing to leave out in the query. */
export function leasePrefilter(p: Policy): LeasePrefilter | null {
  if (p.denyMac.length + p.allowMac.length + p.allowAddress.length === 0) return null;
  return {
    denyMac: p.denyMac.map((m) => m.bytes),
    allowMac: p.allowMac.map((m) => m.bytes),
    allowNetwork: p.allowAddress.map((c) => c.network),
    allowMask: p.allowAddress.map((c) => c.mask),
  };
}

/** The SQL of a prefilter over lease4 as `l`, its arrays bound from `first` on (see prefilterValues). */
export function prefilterSql(first: number): string {
  const [deny, allow, net, mask] = [first, first + 1, first + 2, first + 3].map((n) => `$${n}`);
  return `
   AND NOT EXISTS (SELECT 1 FROM unnest(${deny}::bytea[]) d(p) WHERE substring(l.hwaddr FROM 1 FOR length(d.p)) = d.p)
   AND (cardinality(${allow}::bytea[]) = 0
        OR EXISTS (SELECT 1 FROM unnest(${allow}::bytea[]) a(p) WHERE substring(l.hwaddr FROM 1 FOR length(a.p)) = a.p))
   AND (cardinality(${net}::bigint[]) = 0
        OR EXISTS (SELECT 1 FROM unnest(${net}::bigint[], ${mask}::bigint[]) c(net, mask) WHERE (l.address & c.mask) = c.net))`;
}

export function prefilterValues(f: LeasePrefilter): unknown[] {
  return [f.denyMac, f.allowMac, f.allowNetwork, f.allowMask];
}
