// Catch-up skipping devices already decided: a device an operator's row covers (foreign) or one over
// --max-reservations-per-subnet (limit) has no reservation for its address, so every catch-up query
// finds it. Once decided, a later catch-up on the same connection leaves it out; a reconnect re-derives
// everything from lease4. A real monitor in database mode, on PostgreSQL with the Kea schema.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ReservationOutcome } from '../src/domain/outcomes';
import type { Lease } from '../src/lease';
import { M } from '../src/metrics';
import type { DbOptions } from '../src/options';
import { DecidedLeases } from '../src/reconcile/decided';
import { insertLeases, insertOperatorRow, ipToInt, macHex } from './helpers/leases';
import { startMonitor, testOptions } from './helpers/monitor';
import { connect, hostRows, TestCluster } from './helpers/pg';
import { waitFor } from './helpers/wait';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

const OPS_MAC = '02:aa:00:00:00:01';
const OVER_CAP_MAC = '02:00:00:00:00:12';

/** A notification for a lease lease4 never held: the writer finds it stale, which asks for a recheck (a catch-up). */
async function staleNotification(db: DbOptions, n: number): Promise<void> {
  const payload = {
    v: 1,
    op: 'insert',
    address: ipToInt('10.0.0.200') + n,
    hwaddr: `02ee000000${n.toString(16).padStart(2, '0')}`,
    subnet_id: 1,
    state: 0,
    valid_lifetime: 3600,
    expire: Math.floor(Date.now() / 1000) + 3600,
    hostname: 'gone',
  };
  await cluster.sql(db.database, `SELECT pg_notify('kea_lease_events', $1)`, [JSON.stringify(payload)]);
}

describe('catch-up and devices already decided', () => {
  test('a second catch-up does not queue a foreign or over-cap device again; after a reconnect (operator row removed) it does', async () => {
    const db = await cluster.eventDatabase();
    // Subnet 1, cap 2: two devices reserved, the third over the cap. Subnet 2: the operator's row
    // covers a device (at another address than its lease), so the device is foreign.
    const c = await connect(db);
    await insertOperatorRow(c, { mac: OPS_MAC, ip: '10.0.2.1', subnet: 2, hostname: 'ops-pinned' });
    await insertLeases(c, [
      { ip: '10.0.0.10', mac: '02:00:00:00:00:10', hostname: 'a' },
      { ip: '10.0.0.11', mac: '02:00:00:00:00:11', hostname: 'b' },
      { ip: '10.0.0.12', mac: OVER_CAP_MAC, hostname: 'c' },
      { ip: '10.0.2.9', mac: OPS_MAC, hostname: 'laptop', subnet: 2 },
    ]);
    await c.end();
    // No reconcile timer: every catch-up here is one the test causes.
    const run = await startMonitor(
      testOptions(db, { useDatabaseEvents: true, maxReservationsPerSubnet: 2, reconcileInterval: 0 }),
      'debug',
    );
    const m = run.monitor.metrics;
    const outcomes = (result: ReservationOutcome) => m.value(M.reservations[0], { result });
    const queuedByCatchUp = () => m.value(M.catchUp[0]);
    const catchUpsDone = () =>
      run.logs.filter((l) => l.includes('Caught up with leases committed while not listening') || l.includes('Catch-up found nothing'))
        .length;
    try {
      await waitFor(
        'the first catch-up decided all four',
        () => outcomes('created') + outcomes('limit') + outcomes('foreign') === 4,
        20_000,
      );
      assert.deepEqual([outcomes('created'), outcomes('limit'), outcomes('foreign')], [2, 1, 1]);
      assert.equal(queuedByCatchUp(), 4);
      // The catch-up says it is done once its leases' records are on disk, after their outcomes count.
      await waitFor('the first catch-up done', () => catchUpsDone() >= 1, 20_000);
      assert.equal(catchUpsDone(), 1);

      // A stale outcome makes the reconciler look at lease4 again: the foreign and the over-cap
      // device are the only unreserved live leases, and both are left out this time.
      await staleNotification(db, 1);
      await waitFor('the recheck ran', () => catchUpsDone() === 2, 20_000);
      assert.equal(queuedByCatchUp(), 4, 'the second catch-up queued nothing');
      assert.equal(m.value(M.catchUpSkipped[0], { outcome: 'foreign' }), 1);
      assert.equal(m.value(M.catchUpSkipped[0], { outcome: 'limit' }), 1);
      assert.deepEqual([outcomes('limit'), outcomes('foreign')], [1, 1], 'neither went through the writer again');

      // The operator removes their row, then the listener's connection drops: the new connection
      // re-derives everything, so both devices are queued again, and the former foreign one is reserved.
      await cluster.sql(db.database, `DELETE FROM hosts WHERE user_context = '{"owner":"ops"}'`);
      await cluster.sql(
        db.database,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'kea-lease-monitor-listener'`,
      );
      await waitFor('reconnected', () => m.value(M.reconnects[0]) === 1, 20_000);
      await waitFor('the reconnect catch-up ran', () => catchUpsDone() === 3, 20_000);
      assert.equal(queuedByCatchUp(), 6, 'the two undecided-again devices were queued');
      await waitFor('both written', () => outcomes('created') + outcomes('limit') === 5, 20_000);
      assert.deepEqual([outcomes('created'), outcomes('limit'), outcomes('foreign')], [3, 2, 1]);
      const mine = (await hostRows(db)).filter((r) => r.mac === OPS_MAC);
      assert.deepEqual(
        mine.map((r) => r.ip),
        ['10.0.2.9'],
      );
    } finally {
      await run.stop();
    }
  });
  test("the reconcile timer's pass forgets the decided devices: each pass queues them again", async () => {
    const db = await cluster.eventDatabase();
    await cluster.sql(
      db.database,
      `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
       VALUES (decode($1, 'hex'), 0, 1, $2, 'ops-pinned', '{"owner":"ops"}')`,
      [macHex(OPS_MAC), ipToInt('10.0.0.1')],
    );
    const c = await connect(db);
    await insertLeases(c, [{ ip: '10.0.0.9', mac: OPS_MAC, hostname: 'laptop' }]);
    await c.end();
    const run = await startMonitor(testOptions(db, { useDatabaseEvents: true, reconcileInterval: 0.5 }));
    const m = run.monitor.metrics;
    try {
      await waitFor('two reconciliations', () => m.value(M.reconcileRuns[0]) >= 2, 20_000);
      const runs = m.value(M.reconcileRuns[0]);
      // One from the connect's catch-up, one from each finished pass: none of them skipped the device.
      assert.ok(m.value(M.catchUp[0]) >= 1 + runs, `${m.value(M.catchUp[0])} queued in ${runs} passes`);
      assert.equal(m.value(M.catchUpSkipped[0], { outcome: 'foreign' }), 0);
    } finally {
      await run.stop();
    }
  });
});

describe('DecidedLeases', () => {
  const lease = (mac: string, ip: string, subnetId = 1): Lease => ({
    address: ipToInt(ip),
    hwaddr: Buffer.from(macHex(mac), 'hex'),
    subnetId,
    hostname: null,
    source: 'database',
  });
  const result = (l: Lease, outcome: ReservationOutcome) => ({ lease: l, outcome, hostId: null });

  test('holds while MAC, subnet and address are the same; limit only until a creation in that subnet', () => {
    const d = new DecidedLeases();
    const ops = lease('02:aa:00:00:00:01', '10.0.2.9', 2);
    const over = lease('02:00:00:00:00:12', '10.0.0.12');
    d.learn([result(ops, 'foreign'), result(over, 'limit')]);
    assert.equal(d.holds(ops), 'foreign');
    assert.equal(d.holds(over), 'limit');
    assert.equal(d.holds(lease('02:aa:00:00:00:01', '10.0.2.10', 2)), null, 'moved: decided again');
    assert.equal(d.holds(lease('02:aa:00:00:00:01', '10.0.2.9', 3)), null, 'another subnet');
    d.learn([result(lease('02:00:00:00:00:99', '10.0.0.99'), 'created')]);
    assert.equal(d.holds(over), null, 'a creation in subnet 1: room may be there again');
    assert.equal(d.holds(ops), 'foreign', 'foreign does not depend on room');
    d.learn([result(over, 'limit')]);
    assert.equal(d.holds(over), 'limit', 'decided over the cap again');
    d.learn([result(ops, 'updated')]);
    assert.equal(d.holds(ops), null, 'any other outcome forgets the device');
    d.forgetAll();
    assert.equal(d.size, 0);
  });

  test('bounded: past the cap everything is forgotten, then learned again', () => {
    const d = new DecidedLeases(3);
    const ls = [1, 2, 3, 4].map((i) => lease(`02:00:00:00:01:0${i}`, `10.0.1.${i}`));
    d.learn(ls.slice(0, 3).map((l) => result(l, 'foreign')));
    assert.equal(d.size, 3);
    d.learn([result(ls[3], 'foreign')]);
    assert.equal(d.size, 1);
    assert.equal(d.holds(ls[0]), null);
    assert.equal(d.holds(ls[3]), 'foreign');
  });
});
