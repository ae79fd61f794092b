// The physical limit of database mode: LISTEN on the monitor's channel and, for each notification, write the
// discovery file (temp file + rename) and nothing else: no validation, no reservation, no logging, no metrics.
// `make bench` runs it under the same load and on the same directory as the monitor, and reads the monitor's
// latency against it. Usage: node --import tsx bench/lib/minimal-listener.ts OUTPUT_DIR   (PG* env vars)
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';

const CHANNEL = 'kea_lease_events'; // src/db/schema.ts NOTIFY_CHANNEL, migrations/0002_lease4_notify.up.sql
const outDir = process.argv[2];
let seq = 0;

const ip = (a: number) => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.');

/** A record of the same shape and size as the monitor's (src/discovery.ts). */
function write(payload: string): void {
  const p = JSON.parse(payload) as { address: number; hwaddr: string; subnet_id: number; hostname: string | null };
  const stem = p.hwaddr.match(/../g)!.join('-');
  const t = new Date().toISOString();
  const text =
    JSON.stringify(
      {
        mac: stem.replace(/-/g, ':'),
        ip: ip(p.address),
        hostname: p.hostname,
        subnet_id: p.subnet_id,
        first_seen: t,
        last_seen: t,
        source: 'database',
        reservation: 'created',
        host_id: 1000000,
      },
      null,
      2,
    ) + '\n';
  const tmp = join(outDir, `.${stem}.json.${process.pid}.${++seq}.tmp`);
  const fd = openSync(tmp, 'wx', 0o644);
  writeSync(fd, text);
  closeSync(fd);
  renameSync(tmp, join(outDir, `${stem}.json`));
}

async function main() {
  const c = new Client({ application_name: 'bench-minimal-listener' });
  c.on('notification', (n) => {
    if (n.payload) write(n.payload);
  });
  await c.connect();
  await c.query(`LISTEN ${CHANNEL}`);
  process.stdout.write('minimal listener: Listening for database lease events\n');
  const stop = () => void c.end().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`minimal listener: ${(e as Error).message}\n`);
  process.exit(1);
});
