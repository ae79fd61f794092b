// BASELINE, NOT THE PRODUCT. The seed design (shared/seeds/000_7556397bab71a8aa.txt), re-created only so that the
// benchmarks can put it side by side with the monitor: one notification at a time, and per lease either
//   --variant select-insert : SELECT the reservation, INSERT it when absent (check-then-insert, 2 queries), or
//   --variant upsert        : one INSERT ... ON CONFLICT DO UPDATE per notification (the seed's "optimisation"),
// then a discovery JSON file (temp + rename). The seed's trigger is broken on the real schema (NEW.lease_id),
// so this installs the same idea with the real columns, on its own channel, trigger and function names.
// It is written in TypeScript with the same pg driver as the monitor, so the comparison is of design, not of language
// (the seed itself was Python/psycopg2).
// Usage: node --import tsx bench/baseline-seed.ts --variant select-insert|upsert --output-dir DIR   (PG* env vars)
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { benchArgs } from './lib/args';

const args = benchArgs(
  'bench/baseline-seed.ts',
  "The seed document's design, re-created only for comparison (started by bench/lib/sut.ts).",
  {
    variant: {
      type: 'string',
      oneOf: ['select-insert', 'upsert'],
      single: true,
      help: 'how each notification is written (default select-insert)',
    },
    'output-dir': { type: 'string', help: 'where the discovery files go' },
    install: { type: 'boolean', help: "install the baseline's NOTIFY trigger on lease4, then exit" },
  },
);
const variant = args.variant ?? 'select-insert';
if (!args.install && !args['output-dir']) {
  process.stderr.write('bench/baseline-seed.ts: --output-dir is required (or --install)\n');
  process.exit(2);
}
const outDir = args['output-dir'] ?? '';
const CHANNEL = 'kea_lease_events_baseline';

const TRIGGER = `
CREATE OR REPLACE FUNCTION bench_baseline_lease_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('${CHANNEL}', host('0.0.0.0'::inet + NEW.address) || ':' || encode(NEW.hwaddr, 'hex') || ':' ||
                    NEW.subnet_id || ':' || COALESCE(NEW.hostname, ''));
  RETURN NULL;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS bench_baseline_lease_notify ON lease4;
CREATE TRIGGER bench_baseline_lease_notify AFTER INSERT OR UPDATE ON lease4 FOR EACH ROW EXECUTE FUNCTION bench_baseline_lease_notify();`;

async function main() {
  const c = new Client({ application_name: `baseline-${variant}` });
  await c.connect();
  if (args.install) {
    await c.query(TRIGGER);
    await c.end();
    return;
  }
  const queue: string[] = [];
  let busy = false;
  const work = async () => {
    if (busy) return;
    busy = true;
    while (queue.length) await handle(queue.shift()!);
    busy = false;
  };
  async function handle(payload: string) {
    const [ip, mac, subnet, hostname = ''] = payload.split(':') as [string, string, string, string];
    const hw = Buffer.from(mac, 'hex');
    let hostId: number;
    if (variant === 'upsert') {
      const r = await c.query(
        `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname)
         VALUES ($1, 0, $2, ('${ip}'::inet - '0.0.0.0'::inet), $3)
         ON CONFLICT (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id) WHERE dhcp4_subnet_id IS NOT NULL
         DO UPDATE SET ipv4_address = EXCLUDED.ipv4_address, hostname = EXCLUDED.hostname
         RETURNING host_id, (xmax = 0) AS inserted`,
        [hw, subnet, hostname || null],
      );
      hostId = r.rows[0].host_id;
    } else {
      const r = await c.query(
        'SELECT host_id FROM hosts WHERE dhcp_identifier = $1 AND dhcp_identifier_type = 0 AND dhcp4_subnet_id = $2',
        [hw, subnet],
      );
      if (r.rows.length) hostId = r.rows[0].host_id;
      else {
        const ins = await c.query(
          `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname)
           VALUES ($1, 0, $2, ('${ip}'::inet - '0.0.0.0'::inet), $3) RETURNING host_id`,
          [hw, subnet, hostname || null],
        );
        hostId = ins.rows[0].host_id;
      }
    }
    const name = mac.match(/../g)!.join('-');
    const t = new Date().toISOString();
    const file = join(outDir, `${name}.json`);
    writeFileSync(
      `${file}.tmp`,
      JSON.stringify({
        mac: mac.match(/../g)!.join(':'),
        ip,
        hostname,
        subnet_id: Number(subnet),
        first_seen: t,
        last_seen: t,
        source: 'baseline',
        reservation: true,
        host_id: hostId,
      }),
    );
    renameSync(`${file}.tmp`, file);
  }
  c.on('notification', (n) => {
    if (n.payload) queue.push(n.payload);
    void work();
  });
  await c.query(`LISTEN ${CHANNEL}`);
  process.stdout.write(`BASELINE (${variant}) Listening for database lease events\n`);
  const stop = () => void c.end().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`baseline: ${(e as Error).message}\n`);
  process.exit(1);
});
