// What a reconcile pass (the timer's) reads and queues again: with a MAC or address policy, only the
// leases that policy may select; a reserved lease (the monitor's or an operator's) only when its
// discovery record is missing. A real monitor in database mode on the Kea schema.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { M } from '../src/metrics';
import { macFileStem } from '../src/lease';
import { CATCH_UP_PAGE, IN_FLIGHT, READ_AHEAD, recordedMacs } from '../src/sources/catch-up';
import { fileStem, insertLeases, insertOperatorRow, manyLeases } from './helpers/leases';
import { queuePeakUntilReserved, startMonitor, testOptions } from './helpers/monitor';
import { connect, TestCluster } from './helpers/pg';
import { waitFor } from './helpers/wait';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

const MINE = { ip: '10.0.0.10', mac: '02:aa:00:00:00:01', hostname: 'bmc-1' };
const OPERATORS = { ip: '10.0.0.11', mac: '02:aa:00:00:00:02', hostname: 'pinned' };
const LEFT_OUT = { ip: '10.0.0.12', mac: '02:bb:00:00:00:03', hostname: 'laptop' };
const OUT_OF_RANGE = { ip: '10.0.1.13', mac: '02:aa:00:00:00:04', hostname: 'other-rack' };

describe('a reconcile pass', () => {
  test('leaves out in its query what the MAC and address rules leave out, and counts them once', async () => {
    const db = await cluster.eventDatabase();
    const c = await connect(db);
    // The operator's row for this very lease (same MAC, subnet and address).
    await insertOperatorRow(c, OPERATORS);
    await insertLeases(c, [MINE, OPERATORS, LEFT_OUT, OUT_OF_RANGE]);
    await c.end();
    const run = await startMonitor(
      testOptions(db, {
        useDatabaseEvents: true,
        reconcileInterval: 0.3,
        policy: { ...testOptions(db).policy, allowMacPrefix: ['02:aa'], allowAddress: ['10.0.0.0/24'] },
      }),
      'debug',
    );
    const m = run.monitor.metrics;
    const notSelected = (reason: string) => m.value(M.notSelected[0], { reason });
    const record = join(run.options.outputDir, `${fileStem(MINE.mac)}.json`);
    try {
      const operators = join(run.options.outputDir, `${fileStem(OPERATORS.mac)}.json`);
      await waitFor('the connect catch-up', () => existsSync(record) && existsSync(operators));
      const passes = m.value(M.reconcileRuns[0]);
      await waitFor('three reconcile passes', () => m.value(M.reconcileRuns[0]) >= passes + 3, 10_000);
      // Counted once, by the catch-up on connect; the timer's passes do not count them again.
      assert.equal(notSelected('mac-not-allowed'), 1);
      assert.equal(notSelected('address-not-allowed'), 1);
      // The operator's lease (reserved, foreign) got its record at connect, and is not queued again.
      assert.equal(m.value(M.recordsReconciled[0]), 1);

      rmSync(record);
      await waitFor('the record written again by a pass', () => existsSync(record), 10_000);
      assert.equal(m.value(M.recordsReconciled[0]), 2);
      assert.equal(notSelected('mac-not-allowed'), 1);
    } finally {
      await run.stop();
    }
  });

  test('without a policy: a pass with nothing to do queues nothing; a missing record or a missing reservation is queued again', async () => {
    const db = await cluster.eventDatabase();
    const c = await connect(db);
    await insertOperatorRow(c, OPERATORS);
    await insertLeases(c, [MINE, OPERATORS]);
    const run = await startMonitor(testOptions(db, { useDatabaseEvents: true, reconcileInterval: 0.3 }), 'debug');
    const m = run.monitor.metrics;
    const passes = () => m.value(M.reconcileRuns[0]);
    const record = join(run.options.outputDir, `${fileStem(MINE.mac)}.json`);
    const operators = join(run.options.outputDir, `${fileStem(OPERATORS.mac)}.json`);
    const mine = async () =>
      Number(
        (
          await c.query<{ n: string }>(`SELECT count(*) AS n FROM hosts WHERE dhcp_identifier = decode(replace($1, ':', ''), 'hex')`, [
            MINE.mac,
          ])
        ).rows[0].n,
      );
    try {
      await waitFor('the connect catch-up', () => existsSync(record) && existsSync(operators));
      const found = m.value(M.catchUp[0]);
      const p0 = passes();
      await waitFor('three reconcile passes', () => passes() >= p0 + 3, 10_000);
      assert.equal(m.value(M.catchUp[0]), found, 'an idle pass queues no lease');

      // A record on disk does not hide a reservation that is gone.
      await c.query(`DELETE FROM hosts WHERE dhcp_identifier = decode(replace($1, ':', ''), 'hex')`, [MINE.mac]);
      await waitFor('the reservation made again by a pass', async () => (await mine()) === 1, 10_000);
      // A reservation (here the operator's) does not hide a record that is gone.
      const reconciled = m.value(M.recordsReconciled[0]);
      rmSync(operators);
      await waitFor('the record written again by a pass', () => existsSync(operators), 10_000);
      assert.equal(m.value(M.recordsReconciled[0]), reconciled + 1);
    } finally {
      await run.stop();
      await c.end();
    }
  });

  test('the recorded MACs it sends: each stem as PostgreSQL reads it back, names of another shape left out', async () => {
    const c = await connect(await cluster.eventDatabase());
    try {
      const mac = Buffer.from([0x02, 0xaa, 0, 0, 0, 0x01]);
      const long = Buffer.alloc(20, 0xfe);
      const names = [
        macFileStem(mac),
        macFileStem(long),
        '02-AA-00-00-00-01',
        '02-aa-0',
        'x.tmp',
        '',
        '../02-aa',
        '"}',
        macFileStem(Buffer.alloc(21, 1)),
      ];
      const read = async (stems: string[]) =>
        (await c.query<{ a: Buffer[] }>('SELECT $1::bytea[] AS a', [recordedMacs(new Set(stems))])).rows[0].a;
      assert.deepEqual(await read(names), [mac, long]);
      assert.deepEqual(await read([]), []);
    } finally {
      await c.end();
    }
  });

  test('a pass whose first page is full filters its later pages in the client: only the missing records are queued', async () => {
    const db = await cluster.eventDatabase();
    const c = await connect(db);
    const page = READ_AHEAD / 2;
    const leases = manyLeases(page + 1000); // in address order
    await insertLeases(c, leases);
    await c.end();
    const options = testOptions(db, { useDatabaseEvents: true, reconcileInterval: 0 });
    const records = leases.map((l) => join(options.outputDir, `${fileStem(l.mac)}.json`));
    const first = await startMonitor(options);
    try {
      await waitFor('every record', () => records.every((f) => existsSync(f)), 60_000);
    } finally {
      await first.stop();
    }
    // Stopped: the next start's pass on connect finds a full first page of missing records, then
    // a page of 1,000 of which 10 are missing.
    const missing = records.slice(0, page + 10);
    for (const f of missing) rmSync(f);
    const run = await startMonitor(options);
    try {
      await waitFor('the records written again', () => missing.every((f) => existsSync(f)), 60_000);
      await waitFor('the pass done', () => run.monitor.metrics.value(M.recordsReconciled[0]) >= missing.length, 10_000);
      assert.equal(run.monitor.metrics.value(M.recordsReconciled[0]), missing.length);
    } finally {
      await run.stop();
    }
  });

  test('a catch-up over a large backlog keeps its read-ahead, not the whole --queue-size, queued', async () => {
    const db = await cluster.eventDatabase();
    const c = await connect(db);
    const n = 5 * (READ_AHEAD / 2); // five pages
    await insertLeases(c, manyLeases(n));
    await c.end();
    const most = await queuePeakUntilReserved(testOptions(db, { useDatabaseEvents: true, queueSize: 100_000, batchSize: 500 }), n);
    assert.ok(most > READ_AHEAD / 2, `the catch-up queued pages, saw ${most}`);
    assert.ok(most <= READ_AHEAD + READ_AHEAD / 2, `at most the read-ahead and one page queued at once, saw ${most}`);
  });

  test('a catch-up over a large backlog keeps its leases in flight, not the whole --record-backlog, waiting for records', async () => {
    const db = await cluster.eventDatabase();
    const c = await connect(db);
    const n = IN_FLIGHT + 3 * CATCH_UP_PAGE;
    await insertLeases(c, manyLeases(n));
    await c.end();
    const run = await startMonitor(testOptions(db, { useDatabaseEvents: true, recordBacklog: 100_000, queueSize: 100_000 }));
    const records = () => readdirSync(run.options.outputDir).filter((f) => f.endsWith('.json')).length;
    try {
      await waitFor(`${n} records`, () => records() === n, 120_000, 200);
    } finally {
      await run.stop();
    }
    const most = run.monitor.recordsPeak;
    assert.ok(most <= IN_FLIGHT + CATCH_UP_PAGE, `at most the pass's leases in flight and one page waiting for records, saw ${most}`);
  });
});
