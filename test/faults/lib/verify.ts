// Counting what a fault cost: leases lost (a live lease whose MAC has no reservation for that address,
// or one for another address: a stale move counts as lost) and reservations doubled (two rows for one
// MAC and subnet, or two reservations for one address).
import { checkHosts, Pg, query } from "../../e2e/lib/pg";
import { sleep } from "../../e2e/lib/proc";
import type { Lease } from "./stream";

export interface Count { leases: number; lost: number; doubled: number; detail: string }

/** Live leases in lease4: database mode's truth. */
export async function liveLeases(pg: Pg): Promise<Lease[]> {
  const rows = await query<{ mac: string; ip: string; subnet: string }>(
    pg,
    `SELECT encode(hwaddr, 'hex') AS mac, host('0.0.0.0'::inet + address) AS ip, subnet_id::text AS subnet
       FROM lease4 WHERE state = 0 AND expire > now() AND valid_lifetime > 0`,
  );
  return rows.map((r) => ({ mac: r.mac, ip: r.ip, subnet: Number(r.subnet) }));
}

export async function count(pg: Pg, expected: Lease[]): Promise<Count> {
  const c = await checkHosts(pg, expected);
  const lost = c.missing.length + c.wrong.length;
  const doubled = c.duplicates + c.conflicts;
  const parts: string[] = [];
  if (c.missing.length) parts.push(`${c.missing.length} missing (${c.missing.slice(0, 2).join("; ")})`);
  if (c.wrong.length) parts.push(`${c.wrong.length} at another address (${c.wrong.slice(0, 2).join("; ")})`);
  if (c.duplicates) parts.push(`${c.duplicates} MACs reserved twice`);
  if (c.conflicts) parts.push(`${c.conflicts} addresses reserved twice`);
  return { leases: expected.length, lost, doubled, detail: parts.join(", ") };
}

export interface Converged extends Count {
  /** Seconds from `since` until nothing was lost; null if that never happened within the timeout. */
  recovery: number | null;
}

/**
 * Polls until every expected lease is reserved (or the timeout passes), then counts once more a
 * second later, so a late duplicate still shows.
 */
export async function converge(pg: Pg, expected: () => Promise<Lease[]> | Lease[], since: number, timeoutMs = 90_000): Promise<Converged> {
  const end = Date.now() + timeoutMs;
  let recovery: number | null = null;
  for (;;) {
    try {
      const c = await count(pg, await expected());
      if (c.lost === 0) {
        recovery = (Date.now() - since) / 1000;
        break;
      }
    } catch {
      /* the database may still be coming back */
    }
    if (Date.now() > end) break;
    await sleep(250);
  }
  await sleep(1000);
  return { ...(await count(pg, await expected())), recovery };
}
