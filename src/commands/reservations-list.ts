import { existsSync } from 'node:fs';
import { leaseKey } from '../lease';
import { LeaseStore, readLease4Store, readMemfileStore } from '../lifecycle/lease-store';
import { listOwned } from '../lifecycle/owned';
import type { Options } from '../options';
import { emit, Output, withClient } from './client';

/** Kea's memfile and its generations, any of which the store reads. */
function anyLeaseFile(leaseFile: string): boolean {
  return [leaseFile, `${leaseFile}.1`, `${leaseFile}.2`].some((f) => existsSync(f));
}

/**
 * `reservations list`: the monitor's own reservations, and whether each device has a live lease
 * now. The rows need no lease source; without one (no lease file here) liveness is unknown.
 */
export async function listCommand(o: Options, out: Output): Promise<number> {
  const { rows, store } = await withClient(o.db, 'kea-lease-monitor-list', async (c) => {
    const owned = await listOwned(c);
    let leases: LeaseStore | null = null;
    if (o.useDatabaseEvents) leases = await readLease4Store(c);
    else if (anyLeaseFile(o.leaseFile)) leases = await readMemfileStore(o.leaseFile);
    else out.warn(`warning: no lease file at ${o.leaseFile}: liveness unknown (give --lease-file, --use-database-events or --config)`);
    return { rows: owned, store: leases };
  });
  let live = 0;
  for (const r of rows) {
    const isLive = store ? (store.devices.get(leaseKey({ hwaddr: r.hwaddr, subnetId: r.subnet_id }))?.live ?? false) : null;
    if (isLive) live++;
    emit(
      out,
      {
        mac: r.mac,
        ip: r.ip,
        subnet_id: r.subnet_id,
        host_id: r.host_id,
        hostname: r.hostname,
        created: r.created,
        source: r.source,
        live: isLive,
      },
      `${r.mac} ${String(r.ip).padEnd(15)} subnet ${r.subnet_id} host_id ${r.host_id} ${r.hostname ?? '-'} created ${r.created} ${
        isLive === null ? 'liveness unknown' : isLive ? 'live' : 'no live lease'
      }`,
    );
  }
  emit(
    out,
    { reservations: rows.length, live: store ? live : null },
    `${rows.length} reservations owned by kea-lease-monitor${store ? `, ${live} with a live lease` : ''}`,
  );
  return 0;
}
