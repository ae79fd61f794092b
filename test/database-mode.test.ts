import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FatalError } from '../src/errors';
import type { DbOptions } from '../src/options';
import { connect, keaSchemas, TestCluster } from './helpers/pg';
import { fileStem, insertLeases, manyLeases, reservations } from './helpers/leases';
import { startMonitor, testOptions } from './helpers/monitor';
import { waitFor } from './helpers/wait';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

async function countReservations(db: DbOptions): Promise<number> {
  const c = await connect(db);
  try {
    return (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM hosts')).rows[0].n;
  } finally {
    await c.end();
  }
}

// Every tested Kea release's schema (2.2 / 2.6 / 3.0).
for (const schema of keaSchemas())
  describe(`${schema.label}: database mode (LISTEN/NOTIFY)`, () => {
    // The full 10,000 on this machine's own schema; 2,000 on the others, where what differs is lease4's columns and
    // Kea's own triggers, not the monitor's throughput (keeps `make test` within its time).
    const N = schema === keaSchemas()[0] ? 10_000 : 2_000;
    test(`a burst of ${N.toLocaleString('en')} lease inserts all become reservations and discovery records`, async () => {
      const db = await cluster.eventDatabase(schema);
      const run = await startMonitor(testOptions(db, { useDatabaseEvents: true }));
      try {
        assert.ok(run.logs.some((l) => l.includes('Listening for database lease events')));
        const c = await connect(db);
        const leases = manyLeases(N);
        // Kea commits one lease per transaction; mix those with larger transactions.
        for (const l of leases.slice(0, 500)) await insertLeases(c, [l]);
        for (let i = 500; i < leases.length; i += 250) await insertLeases(c, leases.slice(i, i + 250));
        await c.end();
        await waitFor(`${N} reservations`, async () => (await countReservations(db)) === N, 60_000, 100);
        await waitFor(
          `${N} discovery files`,
          () => readdirSync(run.options.outputDir).filter((f) => f.endsWith('.json')).length === N,
          30_000,
        );

        const check = await connect(db);
        const rows = await reservations(check);
        await check.end();
        const byMac = new Map(rows.map((r) => [r.mac, r]));
        for (const l of leases) assert.equal(byMac.get(l.mac)?.ip, l.ip, `reservation for ${l.mac}`);

        const record = JSON.parse(readFileSync(join(run.options.outputDir, `${fileStem(leases[42].mac)}.json`), 'utf8'));
        assert.deepEqual(
          [record.mac, record.ip, record.hostname, record.subnet_id, record.source, record.reservation, record.host_id],
          [leases[42].mac, leases[42].ip, 'node-42', 1, 'database', 'created', byMac.get(leases[42].mac)?.host_id],
        );
        assert.ok(record.first_seen && record.last_seen);
        assert.equal(run.monitor.metrics.value('kea_lease_monitor_reservations_total', { result: 'created' }), N);
      } finally {
        await run.stop();
      }
    });

    test('a lease committed while the monitor is stopped is reserved after it starts', async () => {
      const db = await cluster.eventDatabase(schema);
      const options = testOptions(db, { useDatabaseEvents: true });
      const first = await startMonitor(options);
      const c = await connect(db);
      await insertLeases(c, manyLeases(5));
      await waitFor('first reservations', async () => (await countReservations(db)) === 5);
      await first.stop();

      await insertLeases(c, manyLeases(3, 100));
      const second = await startMonitor(options);
      try {
        await waitFor('caught-up reservations', async () => (await countReservations(db)) === 8);
        assert.ok(second.logs.some((l) => l.includes('Caught up with leases committed while not listening')));
        const record = JSON.parse(readFileSync(join(options.outputDir, `${fileStem(manyLeases(1, 100)[0].mac)}.json`), 'utf8'));
        assert.equal(record.reservation, 'created');
      } finally {
        await second.stop();
        await c.end();
      }
    });

    test('a PostgreSQL restart mid-stream loses nothing and duplicates nothing', async () => {
      const db = await cluster.eventDatabase(schema);
      const run = await startMonitor(testOptions(db, { useDatabaseEvents: true }));
      const leases = manyLeases(3000, 20_000);
      let restarted = false;
      try {
        for (let i = 0; i < leases.length; i += 100) {
          if (i === 1500 && !restarted) {
            cluster.restart();
            restarted = true;
          }
          // Like Kea, retry a lease write that failed because the server went away.
          for (let attempt = 0; ; attempt++) {
            try {
              const c = await connect(db);
              await insertLeases(c, leases.slice(i, i + 100)).finally(() => c.end());
              break;
            } catch (err) {
              if (/duplicate key/.test(String(err))) break;
              if (attempt > 100) throw err;
              await new Promise((r) => setTimeout(r, 100));
            }
          }
        }
        await waitFor('3,000 reservations after the restart', async () => (await countReservations(db)) === 3000, 60_000, 200);
        const c = await connect(db);
        const dup = await c.query(`SELECT ipv4_address FROM hosts GROUP BY 1, dhcp4_subnet_id HAVING count(*) > 1`);
        await c.end();
        assert.equal(dup.rowCount, 0);
        assert.ok(
          run.logs.some((l) => l.includes('Lost the database listener connection')),
          'the outage was noticed',
        );
        assert.ok(run.logs.filter((l) => l.includes('Listening for database lease events')).length >= 2, 'and the listener came back');
        assert.ok(run.monitor.metrics.value('kea_lease_monitor_listener_reconnects_total') >= 1);
      } finally {
        await run.stop();
      }
    });

    test('malformed and hostile notifications are logged and counted; good leases around them still land', async () => {
      const db = await cluster.eventDatabase(schema);
      const run = await startMonitor(testOptions(db, { useDatabaseEvents: true }));
      const c = await connect(db);
      try {
        const good = manyLeases(50, 40_000);
        for (let i = 0; i < 100; i++) {
          const bad = [
            '{',
            '[]',
            '{"v":1}',
            JSON.stringify({ v: 1, op: 'insert', address: -5, hwaddr: 'aa', subnet_id: 1 }),
            JSON.stringify({ v: 1, op: 'insert', address: 5, hwaddr: '../../etc/passwd', subnet_id: 1 }),
          ][i % 5];
          await c.query('SELECT pg_notify($1, $2)', ['kea_lease_events', bad]);
          if (i % 2 === 0) await insertLeases(c, [good[i / 2]]);
        }
        // A real lease with a hostile hostname: sanitised, filed by MAC.
        await insertLeases(c, [
          { ip: '192.168.1.1', mac: '0a:0b:0c:0d:0e:0f', hostname: `../../etc/cron.d/x;$(rm -rf /)\u001b[0m${'é'.repeat(200)}` },
        ]);
        // A well-formed payload with no lease behind it: only a hint, so nothing is written.
        const forged = {
          v: 1,
          op: 'insert',
          address: 3232235778,
          hwaddr: '0a0b0c0d0e10',
          subnet_id: 1,
          state: 0,
          valid_lifetime: 3600,
          expire: Math.floor(Date.now() / 1000) + 3600,
          hostname: `\u0000${'A'.repeat(7000)}`,
        };
        await c.query('SELECT pg_notify($1, $2)', ['kea_lease_events', JSON.stringify(forged)]);
        await waitFor('good reservations', async () => (await countReservations(db)) === 51);
        await waitFor(
          'the forgery judged stale',
          () => run.monitor.metrics.value('kea_lease_monitor_reservations_total', { result: 'stale' }) === 1,
        );
        assert.equal(
          run.monitor.metrics.value('kea_lease_monitor_input_rejected_total', { source: 'database', reason: 'invalid-payload' }),
          100,
        );
        assert.equal(run.logs.filter((l) => l.includes('Malformed lease notification skipped')).length, 100);
        const rows = await reservations(c);
        const h = rows.find((r) => r.mac === '0a:0b:0c:0d:0e:0f');
        assert.ok(h?.hostname?.startsWith('../../etc/cron.d/x;$(rm -rf /)[0mééé'), String(h?.hostname));
        assert.ok(Buffer.byteLength(h?.hostname ?? '') >= 254 && Buffer.byteLength(h?.hostname ?? '') <= 255);
        await waitFor('hostile record', () => readdirSync(run.options.outputDir).includes('0a-0b-0c-0d-0e-0f.json'));
        assert.deepEqual(
          readdirSync(run.options.outputDir).filter((f) => !/^([0-9a-f]{2}-){5}[0-9a-f]{2}\.json$/.test(f)),
          [],
        );
      } finally {
        await c.end();
        await run.stop();
      }
    });

    test('a full queue drops notifications and a catch-up recovers every one of them', async () => {
      const db = await cluster.eventDatabase(schema);
      const run = await startMonitor(testOptions(db, { useDatabaseEvents: true, queueSize: 20, batchSize: 10 }));
      try {
        const c = await connect(db);
        await insertLeases(c, manyLeases(3000, 60_000));
        await c.end();
        await waitFor('3,000 reservations', async () => (await countReservations(db)) === 3000, 60_000, 100);
        assert.ok(run.monitor.metrics.value('kea_lease_monitor_queue_overflows_total') > 0, 'the queue did overflow');
      } finally {
        await run.stop();
      }
    });

    test('a lease PostgreSQL refuses is isolated from its batch; the others are written', async () => {
      const db = await cluster.eventDatabase(schema);
      const c = await connect(db);
      // Something in the database (a site's own trigger, a check) refuses one row for good.
      await c.query(`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.hostname = 'poison' THEN RAISE EXCEPTION 'refused' USING ERRCODE = '23514'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER refuse_poison BEFORE INSERT ON hosts FOR EACH ROW EXECUTE FUNCTION refuse_poison()`);
      const run = await startMonitor(testOptions(db, { useDatabaseEvents: true }));
      try {
        const leases = manyLeases(40, 90_000);
        leases[17].hostname = 'poison';
        await insertLeases(c, leases);
        await waitFor('39 reservations', async () => (await countReservations(db)) === 39);
        await waitFor('the failure counted', () => run.monitor.metrics.value('kea_lease_monitor_leases_failed_total') === 1);
        assert.ok(run.logs.some((l) => l.includes('PostgreSQL refused this lease; skipped') && l.includes(leases[17].mac)));
      } finally {
        await c.end();
        await run.stop();
      }
    });

    test('without the trigger it refuses to start and names `db migrate --notify`', async () => {
      const db = await cluster.freshDatabase(schema);
      await assert.rejects(
        startMonitor(testOptions(db, { useDatabaseEvents: true })),
        (err: unknown) => err instanceof FatalError && /db migrate --notify/.test(err.message),
      );
    });

    test('renewals cause no database writes', async () => {
      const db = await cluster.eventDatabase(schema);
      const run = await startMonitor(testOptions(db, { useDatabaseEvents: true }));
      const c = await connect(db);
      try {
        await insertLeases(c, manyLeases(20, 80_000));
        await waitFor('reservations', async () => (await countReservations(db)) === 20);
        const batches = run.monitor.metrics.value('kea_lease_monitor_batches_total');
        const received = run.monitor.metrics.value('kea_lease_monitor_leases_received_total', { source: 'database' });
        const seq = Number((await c.query('SELECT last_value FROM hosts_host_id_seq')).rows[0].last_value);
        await c.query(`UPDATE lease4 SET expire = expire + interval '1 hour'`);
        // A new lease committed after the renewals: notifications arrive in commit order on one
        // connection and are written in order, so once its reservation exists, anything the
        // renewals caused has been received and written too. No sleep stands in for "nothing happened".
        const [sentinel] = manyLeases(1, 80_100);
        await insertLeases(c, [sentinel]);
        await waitFor('the sentinel reservation', async () => (await reservations(c)).some((r) => r.mac === sentinel.mac));
        assert.equal(
          run.monitor.metrics.value('kea_lease_monitor_leases_received_total', { source: 'database' }),
          received + 1,
          'only the sentinel was notified',
        );
        assert.equal(run.monitor.metrics.value('kea_lease_monitor_batches_total'), batches + 1, 'one batch: the sentinel');
        assert.equal(
          Number((await c.query('SELECT last_value FROM hosts_host_id_seq')).rows[0].last_value),
          seq + 1,
          'one sequence value: the sentinel',
        );
      } finally {
        await c.end();
        await run.stop();
      }
    });
  });
