// The floor of database mode: the least work that meets the monitor's contract. LISTEN on the monitor's channel;
// take every notification that has arrived; upsert them all in one durable transaction; commit; then write each
// record atomically (temp file + rename). No validation, no lease4 check, no ownership, no logging, no metrics.
// `make bench` runs it under the same load and on the same directory as the monitor, and reads the monitor's
// latency and Kea's achieved rate against it. Usage: node --import tsx bench/lib/floor.ts OUTPUT_DIR   (PG* env vars)
import { Client } from 'pg';
import { NotifyPayload, writeRecord } from './record-file';
import { FLOOR_UPSERT } from './floor-upsert';

const CHANNEL = 'kea_lease_events'; // src/db/schema.ts NOTIFY_CHANNEL, migrations/0002_lease4_notify.up.sql
const outDir = process.argv[2];

const MARK = JSON.stringify({ 'kea-lease-monitor': { created: new Date().toISOString(), source: 'database' } });

async function main() {
  const listen = new Client({ application_name: 'bench-floor-listen' });
  const write = new Client({ application_name: 'bench-floor-write' });
  let pending: NotifyPayload[] = [];
  let busy = false;
  const drain = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      while (pending.length > 0) {
        // One device once per transaction (ON CONFLICT cannot touch a row twice): the newest wins.
        const batch = [...new Map(pending.map((p) => [`${p.hwaddr}/${p.subnet_id}`, p])).values()];
        pending = [];
        await write.query(FLOOR_UPSERT, [
          batch.map((p) => p.hwaddr),
          batch.map((p) => p.subnet_id),
          batch.map((p) => p.address),
          batch.map((p) => p.hostname),
          MARK,
        ]);
        for (const p of batch) writeRecord(outDir, p);
      }
    } finally {
      busy = false;
    }
  };
  listen.on('notification', (n) => {
    if (!n.payload) return;
    pending.push(JSON.parse(n.payload) as NotifyPayload);
    void drain().catch((e: Error) => {
      process.stderr.write(`floor: ${e.message}\n`);
      process.exit(1);
    });
  });
  await write.connect();
  await listen.connect();
  await listen.query(`LISTEN ${CHANNEL}`);
  process.stdout.write('floor: Listening for database lease events\n');
  const stop = () => void Promise.all([listen.end(), write.end()]).finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`floor: ${(e as Error).message}\n`);
  process.exit(1);
});
