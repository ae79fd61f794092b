import type { Lease } from '../lease';
import type { Database } from './pool';

/**
 * Whether lease4 holds this lease now (address, MAC, subnet, default state, unexpired): the same
 * test as the writers' liveness check (reservations.ts). A NOTIFY payload proves nothing, so a
 * device is connected to (the Redfish probe) only after this answers true.
 */
export async function isLiveLease(db: Database, lease: Lease): Promise<boolean> {
  const r = await db.query(
    `SELECT 1 FROM lease4
      WHERE address = $1 AND hwaddr = $2 AND subnet_id = $3 AND state = 0 AND expire > now() AND valid_lifetime > 0
      LIMIT 1`,
    [lease.address, lease.hwaddr, lease.subnetId],
  );
  return r.rowCount === 1;
}
