// Forged notifications from a role with no privilege on lease4, through a running monitor in database mode: they
// reserve nothing (SQL writer and Kea API writer) and cannot grow the metrics without bound.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeReservations } from '../src/db/reservations';
import { Lease, parseHwaddr } from '../src/lease';
import { M } from '../src/metrics';
import type { DbOptions } from '../src/options';
import { OTHER_SUBNET } from '../src/subnet-labels';
import { FakeKea } from './helpers/fake-kea';
import { fileStem, insertLeases, ipToInt } from './helpers/leases';
import { startMonitor, tempDir, testOptions } from './helpers/monitor';
import { connect, TestCluster } from './helpers/pg';
import { waitFor } from './helpers/wait';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

const FORGER = `forger_${process.pid}`;

/** A database with the NOTIFY trigger, and a role that may connect and nothing else (no lease4, no hosts). */
async function eventDatabase(): Promise<DbOptions> {
  const db = await cluster.eventDatabase();
  await cluster.sql(db.database, `DO $$ BEGIN CREATE ROLE ${FORGER} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
  return db;
}

/** Sends the payloads as the forger role, all in one transaction. */
async function forge(db: DbOptions, payloads: object[]): Promise<void> {
  const c = await connect({ ...db, user: FORGER });
  try {
    const { rows } = await c.query<{ lease4: boolean }>("SELECT has_table_privilege('lease4', 'SELECT') AS lease4");
    assert.equal(rows[0].lease4, false, 'the forger cannot read lease4');
    await c.query('SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) AS p', [
      'kea_lease_events',
      payloads.map((p) => JSON.stringify(p)),
    ]);
  } finally {
    await c.end();
  }
}

const payload = (address: number, hwaddr: string, subnetId: number, hostname: string | null = 'evil') => ({
  v: 1,
  op: 'insert',
  address,
  hwaddr,
  subnet_id: subnetId,
  state: 0,
  valid_lifetime: 3600,
  expire: Math.floor(Date.now() / 1000) + 3600,
  hostname,
});

async function hostCount(db: DbOptions): Promise<number> {
  return Number((await cluster.sql<{ n: string }>(db.database, 'SELECT count(*) AS n FROM hosts'))[0].n);
}

/** The distinct subnet_id label values of the two per-subnet counters in a /metrics text. */
function subnetLabels(text: string): Set<string> {
  const re = /^kea_lease_monitor_(?:reservations|leases_not_selected)_total\{[^}]*subnet_id="([^"]*)"/gm;
  return new Set([...text.matchAll(re)].map((m) => m[1]));
}

describe('forged notifications (a role without any privilege on lease4)', () => {
  test('5,000 forged payloads with random subnet ids: nothing reserved, subnet labels and /metrics stay bounded', async () => {
    const db = await eventDatabase();
    // Half of the forgeries carry a denied MAC prefix, so leases_not_selected_total is exercised too.
    const base = testOptions(db, { useDatabaseEvents: true });
    const run = await startMonitor({ ...base, policy: { ...base.policy, denyMacPrefix: ['02:bb'] } });
    try {
      const m = run.monitor.metrics;
      const before = (await m.render()).length;
      const N = 5000;
      const forged = Array.from({ length: N }, (_, i) => {
        const mac = `02${i % 2 ? 'aa' : 'bb'}${i.toString(16).padStart(8, '0')}`;
        return payload(ipToInt('10.1.0.1') + i, mac, 1 + Math.floor(Math.random() * 0xfffffffe));
      });
      await forge(db, forged);
      await waitFor(
        'every forgery judged',
        () => m.value(M.reservations[0], { result: 'stale' }) + m.total(M.notSelected[0]) === N,
        60_000,
        100,
      );
      assert.equal(await hostCount(db), 0, 'no reservation was written');
      const lines = run.logs.filter((l) => l.includes('No live lease in lease4')).length;
      assert.ok(lines <= 60, `${lines} log lines about ${N / 2} stale outcomes: a forger cannot fill the disk`);
      assert.equal(m.total(M.notSelected[0]), N / 2);
      const text = await m.render();
      assert.deepEqual([...subnetLabels(text)], [OTHER_SUBNET], 'every forged subnet counts as "other"');
      const grown = text.length - before;
      assert.ok(grown < 4000, `/metrics grew by ${grown} bytes (${before} -> ${text.length})`);
    } finally {
      await run.stop();
    }
  });

  test('--writer kea-api: a forged new device, move and rename, make 0 calls to Kea', async () => {
    const db = await eventDatabase();
    const kea = await FakeKea.start(tempDir('klm-forged-kea-'));
    const run = await startMonitor(
      testOptions(db, { useDatabaseEvents: true, writer: 'kea-api', keaControlSocket: kea.path, keaApiTimeout: 5 }),
      'debug',
    );
    try {
      const m = run.monitor.metrics;
      // A real lease first: the path to Kea works, and gives an owned device to forge news about.
      const c = await connect(db);
      await insertLeases(c, [{ ip: '10.0.0.50', mac: '02:00:00:00:00:50', hostname: 'real', subnet: 1 }]);
      await c.end();
      await waitFor('the real lease reserved', () => kea.hosts.length === 1, 20_000);
      await waitFor('its outcome counted', () => m.value(M.reservations[0], { result: 'created' }) === 1);
      // The row Kea's own hosts backend would hold, so no catch-up queues the real lease again: every
      // "unchanged" line below then comes from a notification.
      await cluster.sql(
        db.database,
        `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname)
         VALUES (decode('020000000050', 'hex'), 0, 1, $1, 'real')`,
        [ipToInt('10.0.0.50')],
      );
      const unchangedLines = () =>
        run.logs.filter((l) => l.includes('Reservation unchanged') && l.includes('"mac":"02:00:00:00:00:50"')).length;
      const calls = kea.count();
      await forge(db, [
        payload(167772260, '02deadbeef01', 1, 'evil'), // 10.0.0.100, a device lease4 never saw
        payload(ipToInt('10.0.0.77'), '020000000050', 1, 'real'), // the owned device "moved"
      ]);
      await waitFor('both judged stale', () => m.value(M.reservations[0], { result: 'stale' }) === 2);
      // Apart: the queue keeps only the newest news per device. lease4 holds this one, with another hostname.
      const seen = unchangedLines();
      await forge(db, [payload(ipToInt('10.0.0.50'), '020000000050', 1, 'evil')]);
      await waitFor('the rename judged', () => unchangedLines() > seen);
      assert.ok(
        run.logs.filter((l) => l.includes('Reservation unchanged')).every((l) => l.includes('"hostname":"real"')),
        "logged (and recorded) with lease4's hostname, not the payload's",
      );
      assert.equal(kea.count() - calls, 0, 'not one reservation-* command for a forged payload');
      assert.deepEqual(
        kea.hosts.map((h) => [h.mac, h.ip, h.hostname]),
        [['02:00:00:00:00:50', '10.0.0.50', 'real']],
      );
    } finally {
      await run.stop();
      await kea.close();
    }
  });

  test("SQL writer: a forged payload for a real lease's address, later in the batch, does not supersede it", async () => {
    const db = await eventDatabase();
    const c = await connect(db);
    try {
      await insertLeases(c, [{ ip: '10.0.0.60', mac: '02:00:00:00:00:60', hostname: 'real', subnet: 1 }]);
      const fromDb = (ip: string, mac: string, hostname: string): Lease => ({
        address: ipToInt(ip),
        hwaddr: parseHwaddr(mac),
        subnetId: 1,
        hostname,
        source: 'database',
      });
      const results = await writeReservations(c, 'upsert', [
        fromDb('10.0.0.60', '02:00:00:00:00:60', 'real'),
        fromDb('10.0.0.60', '02:de:ad:be:ef:60', 'evil'), // lease4 never gave this MAC that address
      ]);
      assert.deepEqual(
        results.map((r) => r.outcome),
        ['created', 'stale'],
      );
    } finally {
      await c.end();
    }
  });

  test("SQL writer: a forged rename of an owned device leaves its discovery record with lease4's hostname", async () => {
    const db = await eventDatabase();
    const run = await startMonitor(testOptions(db, { useDatabaseEvents: true }), 'debug');
    try {
      const m = run.monitor.metrics;
      const c = await connect(db);
      await insertLeases(c, [{ ip: '10.0.0.70', mac: '02:00:00:00:00:70', hostname: 'real', subnet: 1 }]);
      await c.end();
      await waitFor('the real lease reserved', () => m.value(M.reservations[0], { result: 'created' }) === 1, 20_000);
      const recordOf = (mac: string) => join(run.options.outputDir, `${fileStem(mac)}.json`);
      await waitFor('its record', () => existsSync(recordOf('02:00:00:00:00:70')), 20_000);
      await forge(db, [payload(ipToInt('10.0.0.70'), '020000000070', 1, 'evil')]);
      await waitFor('the rename judged', () => m.value(M.reservations[0], { result: 'unchanged' }) >= 1, 20_000);
      // Sentinel: records are written in order, so once a later device's record exists, the judged
      // rename's record has been written too.
      const c2 = await connect(db);
      await insertLeases(c2, [{ ip: '10.0.0.71', mac: '02:00:00:00:00:71', hostname: 'next', subnet: 1 }]);
      await c2.end();
      await waitFor('the later record', () => existsSync(recordOf('02:00:00:00:00:71')), 20_000);
      const record = recordOf('02:00:00:00:00:70');
      assert.equal(JSON.parse(readFileSync(record, 'utf8')).hostname, 'real', "the record keeps lease4's hostname");
      const host = await cluster.sql<{ hostname: string }>(db.database, 'SELECT hostname FROM hosts ORDER BY ipv4_address');
      assert.deepEqual(
        host.map((h) => h.hostname),
        ['real', 'next'],
      );
    } finally {
      await run.stop();
    }
  });
});
