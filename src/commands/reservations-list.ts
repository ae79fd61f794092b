import { leaseKey } from '../lease';
import { readLease4Store, readMemfileStore } from '../lifecycle/lease-store';
import { listOwned } from '../lifecycle/owned';
import type { Options } from '../options';
import { emit, Output, withClient } from './client';

/** `reservations list`: the monitor's own reservations, and whether each device has a live lease now. */
export async function listCommand(o: Options, out: Output): Promise<number> {
  const { rows, store } = await withClient(o.db, 'kea-lease-monitor-list', async (c) => ({
    rows: await listOwned(c),
    store: o.useDatabaseEvents ? await readLease4Store(c) : await readMemfileStore(o.leaseFile),
  }));
  for (const r of rows) {
    const live = store.devices.get(leaseKey({ hwaddr: r.hwaddr, subnetId: r.subnet_id }))?.live ?? false;
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
        live,
      },
      `${r.mac} ${String(r.ip).padEnd(15)} subnet ${r.subnet_id} host_id ${r.host_id} created ${r.created} ${live ? 'live' : 'no live lease'}`,
    );
  }
  emit(out, { reservations: rows.length }, `${rows.length} reservations owned by kea-lease-monitor`);
  return 0;
}
