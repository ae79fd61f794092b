import { existsSync } from 'node:fs';
import { leaseKey } from '../lease';
import { readMemfileStore } from '../lifecycle/lease-store';
import { OwnedPageRow, pagesOfOwned } from '../lifecycle/owned';
import type { Options } from '../options';
import { emit, Output, withClient } from './client';

/** Kea's memfile and its generations, any of which the store reads. */
function anyLeaseFile(leaseFile: string): boolean {
  return [leaseFile, `${leaseFile}.1`, `${leaseFile}.2`].some((f) => existsSync(f));
}

/**
 * `reservations list`: the monitor's own reservations, and whether each device has a live lease
 * now. The rows need no lease source; without one (no lease file here) liveness is unknown. It
 * streams: a page of rows at a time, liveness from lease4 in the same query (database mode), and
 * the next page only once stdout has taken the last one.
 */
export async function listCommand(o: Options, out: Output): Promise<number> {
  return withClient(o.db, 'kea-lease-monitor-list', async (c) => {
    let liveOf: (r: OwnedPageRow) => boolean | null = (r) => r.live ?? false;
    let known = true;
    if (!o.useDatabaseEvents) {
      if (anyLeaseFile(o.leaseFile)) {
        const store = await readMemfileStore(o.leaseFile);
        liveOf = (r) => store.devices.get(leaseKey({ hwaddr: r.hwaddr, subnetId: r.subnet_id }))?.live ?? false;
      } else {
        out.warn(`warning: no lease file at ${o.leaseFile}: liveness unknown (give --lease-file, --use-database-events or --config)`);
        liveOf = () => null;
        known = false;
      }
    }
    let rows = 0;
    let live = 0;
    for await (const page of pagesOfOwned(c, { live: o.useDatabaseEvents })) {
      for (const r of page) {
        const isLive = liveOf(r);
        rows++;
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
      await out.drained();
    }
    emit(
      out,
      { reservations: rows, live: known ? live : null },
      `${rows} reservations owned by kea-lease-monitor${known ? `, ${live} with a live lease` : ''}`,
    );
    return 0;
  });
}
