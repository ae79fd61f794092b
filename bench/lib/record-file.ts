// A discovery record of the same shape and size as the monitor's (src/discovery.ts), written atomically
// (temp file + rename): what the minimal listener and the floor write per lease.
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface NotifyPayload {
  address: number;
  hwaddr: string;
  subnet_id: number;
  hostname: string | null;
}

let seq = 0;
const ip = (a: number) => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.');

export function writeRecord(outDir: string, p: NotifyPayload): void {
  const stem = p.hwaddr.match(/../g)!.join('-');
  const t = new Date().toISOString();
  const record = {
    mac: stem.replace(/-/g, ':'),
    ip: ip(p.address),
    hostname: p.hostname,
    subnet_id: p.subnet_id,
    first_seen: t,
    last_seen: t,
    source: 'database',
    reservation: 'created',
    host_id: 1000000,
  };
  const tmp = join(outDir, `.${stem}.json.${process.pid}.${++seq}.tmp`);
  const fd = openSync(tmp, 'wx', 0o644);
  writeSync(fd, JSON.stringify(record, null, 2) + '\n');
  closeSync(fd);
  renameSync(tmp, join(outDir, `${stem}.json`));
}
