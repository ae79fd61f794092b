// The physical limit of database mode: LISTEN on the monitor's channel and, for each notification, write the
// discovery file (temp file + rename) and nothing else: no validation, no reservation, no logging, no metrics.
// `make bench` runs it under the same load and on the same directory as the monitor, and reads the monitor's
// latency against it. Usage: node --import tsx bench/lib/minimal-listener.ts OUTPUT_DIR   (PG* env vars)
import { Client } from 'pg';
import { NotifyPayload, writeRecord } from './record-file';

const CHANNEL = 'kea_lease_events'; // src/db/schema.ts NOTIFY_CHANNEL, migrations/0002_lease4_notify.up.sql
const outDir = process.argv[2];

async function main() {
  const c = new Client({ application_name: 'bench-minimal-listener' });
  c.on('notification', (n) => {
    if (n.payload) writeRecord(outDir, JSON.parse(n.payload) as NotifyPayload);
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
