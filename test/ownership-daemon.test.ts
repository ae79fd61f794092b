import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { writeReservations } from '../src/db/reservations';
import { parseHwaddr, parseIPv4 } from '../src/lease';
import { readLease4Store, readMemfileStore } from '../src/lifecycle/lease-store';
import { planStore, PlanLine } from '../src/lifecycle/plan';
import type { DbOptions, Options } from '../src/options';
import { readMark } from '../src/ownership';
import { compilePolicy } from '../src/policy/select';
import { connect, hostRows, TestCluster } from './helpers/pg';
import { CSV_HEADER, csvRow, fileStem, insertLeases, intToIp, ipToInt, macFor, macHex, TestLease } from './helpers/leases';
import { startMonitor, tempDir, testOptions } from './helpers/monitor';
import { waitFor } from './helpers/wait';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

const OPS_MAC = '02:aa:00:00:ee:01';

async function insertOperatorRow(db: DbOptions, mac: string, ip: string, subnet = 1): Promise<void> {
  await cluster.sql(
    db.database,
    `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
     VALUES (decode($1, 'hex'), 0, $2, $3, 'ops-pinned', '{"owner":"ops"}')`,
    [macHex(mac), subnet, ipToInt(ip)],
  );
}

function record(o: Options, mac: string): Record<string, unknown> | null {
  const p = join(o.outputDir, `${fileStem(mac)}.json`);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>) : null;
}

function leaseFileWith(leases: TestLease[]): string {
  const file = join(tempDir('klm-leases-'), 'kea-leases4.csv');
  writeFileSync(file, CSV_HEADER + '\n' + leases.map(csvRow).join(''));
  return file;
}

/**
 * A mixed lease store: BMCs (selected), laptops (not selected by MAC), one hostname denied, one
 * outside the allowed range, the operator's device, an address an operator row holds, and more
 * new BMCs than the cap allows in subnet 2.
 */
function mixedLeases(): TestLease[] {
  const l: TestLease[] = [];
  for (let i = 0; i < 6; i++) l.push({ ip: `10.0.200.${10 + i}`, mac: `0c:c4:7a:00:01:0${i}`, hostname: `bmc-${i}` });
  l.push({ ip: '10.0.200.30', mac: '3c:22:fb:00:00:01', hostname: 'laptop' });
  l.push({ ip: '10.0.200.31', mac: '0c:c4:7a:00:02:01', hostname: 'guest-bmc' });
  l.push({ ip: '10.0.200.100', mac: '0c:c4:7a:00:02:02', hostname: 'bmc-far' });
  l.push({ ip: '10.0.200.9', mac: OPS_MAC, hostname: 'laptop' });
  l.push({ ip: '10.0.200.50', mac: '0c:c4:7a:00:02:03', hostname: 'bmc-clash' });
  for (let i = 0; i < 8; i++) l.push({ ip: `10.0.201.${10 + i}`, mac: `0c:c4:7a:00:03:0${i}`, hostname: `bmc-s2-${i}`, subnet: 2 });
  l.push({ ip: '10.0.202.10', mac: '0c:c4:7a:00:04:01', hostname: 'bmc-s3', subnet: 3 });
  return l;
}

const MIXED_POLICY = {
  subnetIds: [1, 2],
  allowMacPrefix: ['0c:c4:7a', '02:aa'],
  denyMacPrefix: [],
  allowHostname: [],
  denyHostname: ['^guest-'],
  allowAddress: ['10.0.200.0/26', '10.0.201.0/24'],
};

const EXPECTED: Record<string, string> = {
  '0c:c4:7a:00:01:00': 'create',
  '0c:c4:7a:00:01:01': 'create',
  '0c:c4:7a:00:01:02': 'create',
  '0c:c4:7a:00:01:03': 'create',
  '0c:c4:7a:00:01:04': 'create',
  '0c:c4:7a:00:01:05': 'create',
  '3c:22:fb:00:00:01': 'not-selected',
  '0c:c4:7a:00:02:01': 'not-selected',
  '0c:c4:7a:00:02:02': 'not-selected',
  [OPS_MAC]: 'foreign',
  '0c:c4:7a:00:02:03': 'conflict',
  '0c:c4:7a:00:03:00': 'create',
  '0c:c4:7a:00:03:01': 'create',
  '0c:c4:7a:00:03:02': 'create',
  '0c:c4:7a:00:03:03': 'create',
  '0c:c4:7a:00:03:04': 'create',
  '0c:c4:7a:00:03:05': 'create',
  '0c:c4:7a:00:03:06': 'limit',
  '0c:c4:7a:00:03:07': 'limit',
  '0c:c4:7a:00:04:01': 'not-selected',
};

async function seedOperator(db: DbOptions): Promise<void> {
  await insertOperatorRow(db, OPS_MAC, '10.0.200.1');
  await insertOperatorRow(db, '02:bb:00:00:00:01', '10.0.200.50');
}

/** Checks that what the daemon left in hosts and the output directory is what plan said. */
async function assertDaemonDid(db: DbOptions, o: Options, plan: PlanLine[]): Promise<void> {
  // An outcome is counted before its record reaches the disk: wait for every record the plan promises.
  const recorded = new Set(['create', 'foreign', 'conflict']);
  await waitFor(
    'the records of the planned devices',
    () => plan.every((p) => !recorded.has(p.action) || record(o, p.mac) !== null),
    20_000,
  );
  const rows = await hostRows(db);
  for (const p of plan) {
    const mine = rows.filter((r) => r.mac === p.mac && r.subnet === p.subnet_id);
    const rec = record(o, p.mac);
    switch (p.action) {
      case 'create':
        assert.equal(mine.length, 1, p.mac);
        assert.equal(mine[0].ip, p.ip);
        assert.ok(readMark(mine[0].user_context), `${p.mac} marked`);
        assert.equal(rec?.reservation, 'created', p.mac);
        break;
      case 'foreign':
        assert.deepEqual(
          mine.map((r) => [r.ip, r.hostname, r.user_context]),
          [['10.0.200.1', 'ops-pinned', '{"owner":"ops"}']],
        );
        assert.equal(rec?.reservation, 'foreign');
        break;
      case 'conflict':
        assert.equal(mine.length, 0, p.mac);
        assert.equal(rec?.reservation, 'conflict');
        break;
      case 'not-selected':
      case 'limit':
        assert.equal(mine.length, 0, `${p.mac} ${p.action}`);
        assert.equal(rec, null, `${p.mac} ${p.action}: no discovery record`);
        break;
      default:
        assert.fail(`unexpected action ${p.action} for ${p.mac}`);
    }
  }
}

const byMac = (plan: PlanLine[]) => Object.fromEntries(plan.map((p) => [p.mac, p.action]));

describe('ownership and policy in the running daemon', () => {
  test('database mode: plan agrees with what the daemon then does; operator row untouched; cap; policy', async () => {
    const db = await cluster.eventDatabase();
    await seedOperator(db);
    const c = await connect(db);
    await insertLeases(c, mixedLeases());
    const plan = await planStore(c, await readLease4Store(c), compilePolicy(MIXED_POLICY), { maxPerSubnet: 6 });
    await c.end();
    assert.deepEqual(byMac(plan), EXPECTED);
    assert.equal(plan.find((p) => p.mac === '3c:22:fb:00:00:01')?.reason, 'mac-not-allowed');
    assert.equal(plan.find((p) => p.mac === '0c:c4:7a:00:02:01')?.reason, 'hostname-denied');
    assert.equal(plan.find((p) => p.mac === '0c:c4:7a:00:02:02')?.reason, 'address-not-allowed');

    const o = testOptions(db, { useDatabaseEvents: true, policy: MIXED_POLICY, subnetIds: [1, 2], maxReservationsPerSubnet: 6 });
    const run = await startMonitor(o);
    try {
      await waitFor('every planned lease handled', () => run.monitor.metrics.total('kea_lease_monitor_reservations_total') >= 16, 30_000);
      await assertDaemonDid(db, o, plan);
      const m = run.monitor.metrics;
      assert.equal(m.value('kea_lease_monitor_reservations_total', { result: 'foreign' }), 1);
      assert.equal(m.value('kea_lease_monitor_reservations_total', { result: 'limit' }), 2);
      assert.equal(m.value('kea_lease_monitor_leases_not_selected_total', { reason: 'mac-not-allowed' }), 1);
      assert.equal(m.value('kea_lease_monitor_leases_not_selected_total', { reason: 'hostname-denied' }), 1);
      assert.equal(m.value('kea_lease_monitor_leases_not_selected_total', { reason: 'address-not-allowed' }), 1);
      assert.equal(
        run.logs.filter((l) => l.includes('--max-reservations-per-subnet') && l.includes('"warn"')).length,
        1,
        'warned once per subnet',
      );

      // The operator's device comes back again and again (a new hostname each time): still foreign, logged once.
      const c2 = await connect(db);
      for (let i = 2; i <= 4; i++) {
        await c2.query(`UPDATE lease4 SET hostname = $2 WHERE hwaddr = decode($1, 'hex')`, [macHex(OPS_MAC), `laptop-${i}`]);
        await waitFor(
          `event ${i} seen`,
          () => run.monitor.metrics.value('kea_lease_monitor_reservations_total', { result: 'foreign' }) >= i,
          20_000,
        );
      }
      await c2.end();
      assert.equal(run.logs.filter((l) => l.includes('does not own')).length, 1, 'foreign logged once per device');
      const after = await hostRows(db);
      assert.deepEqual(
        after.filter((r) => r.mac === OPS_MAC).map((r) => [r.ip, r.hostname, r.user_context]),
        [['10.0.200.1', 'ops-pinned', '{"owner":"ops"}']],
      );
      assert.ok(!run.logs.some((l) => l.includes('Static reservation updated')));
    } finally {
      await run.stop();
    }
  });

  test('file mode: plan agrees with what the daemon then does', async () => {
    const db = await cluster.freshDatabase();
    await seedOperator(db);
    const leaseFile = leaseFileWith(mixedLeases());
    const c = await connect(db);
    const plan = await planStore(c, await readMemfileStore(leaseFile), compilePolicy(MIXED_POLICY), { maxPerSubnet: 6 });
    await c.end();
    assert.deepEqual(byMac(plan), EXPECTED);
    const o = testOptions(db, { leaseFile, policy: MIXED_POLICY, subnetIds: [1, 2], maxReservationsPerSubnet: 6 });
    const run = await startMonitor(o);
    try {
      await waitFor('every planned lease handled', () => run.monitor.metrics.total('kea_lease_monitor_reservations_total') >= 16, 30_000);
      await assertDaemonDid(db, o, plan);
    } finally {
      await run.stop();
    }
  });

  test('the cap holds while 5,000 new devices arrive in one burst (both sources)', async () => {
    const burst: TestLease[] = Array.from({ length: 5000 }, (_, i) => ({
      ip: intToIp(ipToInt('10.8.0.10') + i),
      mac: macFor(0x080000 + i),
      subnet: 8,
    }));
    for (const mode of ['database', 'file'] as const) {
      const db = mode === 'database' ? await cluster.eventDatabase() : await cluster.freshDatabase();
      const o =
        mode === 'database'
          ? testOptions(db, { useDatabaseEvents: true, maxReservationsPerSubnet: 250 })
          : testOptions(db, { leaseFile: leaseFileWith(burst), maxReservationsPerSubnet: 250 });
      const run = await startMonitor(o);
      try {
        if (mode === 'database') {
          const c = await connect(db);
          await insertLeases(c, burst); // one transaction: 5,000 notifications at once
          await c.end();
        }
        const m = run.monitor.metrics;
        await waitFor('5,000 decisions', () => m.total('kea_lease_monitor_reservations_total') >= 5000, 60_000, 100);
        assert.equal(m.value('kea_lease_monitor_reservations_total', { result: 'created' }), 250, mode);
        assert.equal(m.value('kea_lease_monitor_reservations_total', { result: 'limit' }), 4750, mode);
        assert.equal((await hostRows(db)).length, 250, mode);
        // Records follow the commits (off the commit path): wait for them, then count.
        const records = () => readdirSync(o.outputDir).filter((f) => /^[0-9a-f-]+\.json$/.test(f)).length;
        await waitFor('the records of the burst', () => records() >= 250, 30_000, 100);
        assert.equal(records(), 250, `${mode}: no record past the cap`);
      } finally {
        await run.stop();
      }
    }
  });

  test('a forged NOTIFY from a role without privilege on lease4 creates or moves nothing', async () => {
    const db = await cluster.eventDatabase();
    const c = await connect(db);
    await c.query(`CREATE ROLE forger LOGIN; GRANT CONNECT ON DATABASE ${db.database} TO forger`);
    await insertLeases(c, [{ ip: '10.9.0.5', mac: '02:00:00:09:00:01', hostname: 'real-device' }]);
    const o = testOptions(db, { useDatabaseEvents: true });
    const run = await startMonitor(o);
    const forger = new pg.Client({ ...db, user: 'forger' });
    try {
      await waitFor('the real device reserved', async () => (await hostRows(db)).length === 1, 20_000);
      const before = await hostRows(db);
      const handledBefore = run.monitor.metrics.total('kea_lease_monitor_reservations_total');
      // The forger really cannot read lease4: the check is not vacuous.
      await forger.connect();
      await assert.rejects(forger.query('SELECT 1 FROM lease4 LIMIT 1'), /permission denied/);
      const now = Math.floor(Date.now() / 1000);
      const payload = (ip: string, mac: string, hostname: string) =>
        JSON.stringify({
          v: 1,
          op: 'insert',
          address: ipToInt(ip),
          hwaddr: macHex(mac),
          subnet_id: 1,
          state: 0,
          valid_lifetime: 3600,
          expire: now + 3600,
          hostname,
        }).replace(/'/g, "''");
      await forger.query(`NOTIFY kea_lease_events, '${payload('10.9.0.77', '02:00:00:09:00:99', 'brand-new')}'`);
      await forger.query(`NOTIFY kea_lease_events, '${payload('10.9.0.78', '02:00:00:09:00:01', 'moved')}'`);
      await waitFor(
        'both forgeries handled',
        () => run.monitor.metrics.total('kea_lease_monitor_reservations_total') >= handledBefore + 2,
        20_000,
      );
      assert.deepEqual(await hostRows(db), before, 'nothing created, nothing moved');
      assert.equal(run.monitor.metrics.value('kea_lease_monitor_reservations_total', { result: 'stale' }), 2);
      assert.equal(record(o, '02:00:00:09:00:99'), null);
      assert.equal(record(o, '02:00:00:09:00:01')?.ip, '10.9.0.5');
    } finally {
      await forger.end().catch(() => undefined);
      await run.stop();
      await c.end();
    }
  });

  test('--dry-run decides and counts but writes neither hosts nor records', async () => {
    const db = await cluster.eventDatabase();
    await seedOperator(db);
    const c = await connect(db);
    await insertLeases(c, mixedLeases());
    await c.end();
    const o = testOptions(db, {
      useDatabaseEvents: true,
      policy: MIXED_POLICY,
      subnetIds: [1, 2],
      maxReservationsPerSubnet: 6,
      dryRun: true,
    });
    const run = await startMonitor(o);
    try {
      const m = run.monitor.metrics;
      await waitFor('decisions', () => m.total('kea_lease_monitor_dry_run_decisions_total') >= 16, 30_000);
      assert.equal(m.value('kea_lease_monitor_dry_run_decisions_total', { action: 'created' }), 12);
      assert.equal(m.value('kea_lease_monitor_dry_run_decisions_total', { action: 'foreign' }), 1);
      assert.equal(m.value('kea_lease_monitor_dry_run_decisions_total', { action: 'limit' }), 2);
      assert.equal(m.total('kea_lease_monitor_reservations_total'), 0);
      assert.equal((await hostRows(db)).length, 2, 'only the operator rows');
      assert.deepEqual(
        readdirSync(o.outputDir).filter((f) => /^[0-9a-f-]+\.json$/.test(f)),
        [],
      );
    } finally {
      await run.stop();
    }
  });

  test('--prune-unseen-for on the daemon removes own rows of devices without a live lease, never a live one', async () => {
    const db = await cluster.freshDatabase();
    await insertOperatorRow(db, '02:bb:00:00:00:09', '10.0.210.9');
    const c = await connect(db);
    const [gone] = await writeReservations(c, 'upsert', [
      {
        address: parseIPv4('10.0.210.2'),
        hwaddr: parseHwaddr('02:00:00:21:00:02'),
        subnetId: 1,
        hostname: null,
        source: 'memfile',
      },
    ]);
    assert.equal(gone.outcome, 'created');
    await c.end();
    const leaseFile = leaseFileWith([
      { ip: '10.0.210.1', mac: '02:00:00:21:00:01' },
      { ip: '10.0.210.2', mac: '02:00:00:21:00:02', expire: Math.floor(Date.now() / 1000) - 60 },
    ]);
    const run = await startMonitor(testOptions(db, { leaseFile, pruneUnseenFor: 0 }));
    try {
      await waitFor('a prune pass', () => run.monitor.metrics.value('kea_lease_monitor_reservations_pruned_total') >= 1, 30_000, 200);
      const rows = await hostRows(db);
      assert.deepEqual(rows.map((r) => r.mac).sort(), ['02:00:00:21:00:01', '02:bb:00:00:00:09']);
    } finally {
      await run.stop();
    }
  });
});
