// In a burst the writer sends the next batch before it has handled the last one's results: the
// database sees a second call of the write function waiting on the writers' lock. Per-device order
// still holds when devices move while their first lease is in flight.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DbOptions } from '../src/options';
import { connect, hostRows, keaSchemas, TestCluster } from './helpers/pg';
import { fileStem, insertLeases, intToIp, ipToInt, macHex, manyLeases, reservations, TestLease } from './helpers/leases';
import { memoryLogger, startMonitor, tempDir, testOptions } from './helpers/monitor';
import { Database } from '../src/db/pool';
import { DiscoveryWriter } from '../src/discovery';
import { Lease, parseHwaddr, parseIPv4 } from '../src/lease';
import { Metrics } from '../src/metrics';
import { LeaseQueue } from '../src/pipeline/queue';
import { ReservationWriter } from '../src/pipeline/writer';
import { SqlBackend } from '../src/writers/sql';
import { waitFor } from './helpers/wait';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

const N = 20_000;

/** Polls pg_stat_activity until stopped; true once a write call waited on the writers' lock. */
function watchLockWaits(db: DbOptions): { stop: () => Promise<boolean> } {
  let running = true;
  const seen = (async () => {
    const c = await connect(db);
    try {
      for (; running;) {
        const { rows } = await c.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' AND query LIKE '%kea_lm_write_reservations%'`,
        );
        if (rows[0].n > 0) return true;
      }
      return false;
    } finally {
      await c.end();
    }
  })();
  return {
    stop: async () => {
      running = false;
      return seen;
    },
  };
}

async function hostCount(db: DbOptions): Promise<number> {
  const c = await connect(db);
  try {
    return (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM hosts')).rows[0].n;
  } finally {
    await c.end();
  }
}

describe('a burst through the writer', () => {
  test(`${N.toLocaleString('en')} leases in one transaction: the next batch is sent while the last is written`, async () => {
    const db = await cluster.eventDatabase(keaSchemas()[0]);
    const run = await startMonitor(testOptions(db, { useDatabaseEvents: true }));
    try {
      const watch = watchLockWaits(db);
      const c = await connect(db);
      await insertLeases(c, manyLeases(N));
      await c.end();
      await waitFor(`${N} reservations`, async () => (await hostCount(db)) === N, 60_000, 50);
      assert.equal(await watch.stop(), true, 'a second write call waited on the writers lock');
    } finally {
      await run.stop();
    }
  });

  test('devices that move while their first lease is in flight end on their newer address', async () => {
    const db = await cluster.eventDatabase(keaSchemas()[0]);
    const run = await startMonitor(testOptions(db, { useDatabaseEvents: true }));
    try {
      const first = manyLeases(N);
      const moved = first.map((l, i) => ({ ...l, ip: intToIp(ipToInt('10.0.0.10') + N + i) }));
      const c = await connect(db);
      await insertLeases(c, first);
      // As Kea moves a client: the old address goes, the new one comes, in one transaction.
      await c.query('BEGIN');
      await c.query('DELETE FROM lease4 WHERE hwaddr = ANY ($1::bytea[])', [first.map((l) => Buffer.from(macHex(l.mac), 'hex'))]);
      await insertLeases(c, moved);
      await c.query('COMMIT');
      const newIp = new Map(moved.map((l) => [l.mac, l.ip]));
      await waitFor(
        'every reservation on its newer address',
        async () => {
          const rows = await reservations(c);
          return rows.length === N && rows.every((r) => newIp.get(r.mac) === r.ip);
        },
        60_000,
        200,
      );
      await c.end();
      await waitFor(
        'every record on its newer address',
        () =>
          moved.every((l) => {
            try {
              return (
                (JSON.parse(readFileSync(join(run.options.outputDir, `${fileStem(l.mac)}.json`), 'utf8')) as { ip: string }).ip === l.ip
              );
            } catch {
              return false;
            }
          }),
        30_000,
        200,
      );
    } finally {
      await run.stop();
    }
  });

  // Driven by hand on the real writer, queue and SQL backend: the device's newer lease is queued only
  // once its older one is in a batch in flight, which a lease source cannot time from outside.
  test('a batch retried after a refusal never lands behind a later batch holding the same device', async () => {
    const db = await cluster.freshDatabase();
    const c = await connect(db);
    // 'slow' holds its batch in the database while the test queues more; 'poison' is refused, late.
    await c.query(`CREATE FUNCTION slow_or_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.hostname IN ('slow', 'poison') THEN PERFORM pg_sleep(1); END IF;
        IF NEW.hostname = 'poison' THEN RAISE EXCEPTION 'refused' USING ERRCODE = '23514'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER slow_or_refuse BEFORE INSERT ON hosts FOR EACH ROW EXECUTE FUNCTION slow_or_refuse()`);
    const log = memoryLogger('warn').logger;
    const database = new Database(db, 2, log);
    const backend = new SqlBackend(database, { needs: {}, reservationPolicy: { maxPerSubnet: null }, dryRun: false, durable: true }, log);
    const queue = new LeaseQueue(30);
    const discovery = new DiscoveryWriter(tempDir('klm-out-'));
    discovery.prepare();
    const writer = new ReservationWriter(
      backend,
      queue,
      discovery,
      {
        batchSize: 10,
        batchLingerMs: 0,
        reconnectMaxDelayMs: 500,
        shutdownGraceMs: 5000,
        recordBacklog: 30,
        preflight: true,
        reservationPolicy: { maxPerSubnet: null },
        dryRun: false,
      },
      log,
      new Metrics(),
    );
    const lease = (l: TestLease): Lease => ({
      address: parseIPv4(l.ip),
      hwaddr: parseHwaddr(l.mac),
      subnetId: 1,
      hostname: l.hostname ?? null,
      source: 'memfile',
    });
    const a = manyLeases(10, 50_000);
    a[3].hostname = 'slow';
    const k = manyLeases(10, 60_000);
    k[5].hostname = 'poison';
    const device = k[0];
    try {
      // a is written while k, sent ahead, waits behind it.
      for (const l of [...a, ...k]) assert.ok(queue.offer(lease(l)));
      writer.start();
      await waitFor(
        'batch a inside PostgreSQL',
        async () => {
          const { rows } = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep'`);
          return rows[0].n > 0;
        },
        20_000,
        10,
      );
      assert.equal(queue.size, 0, 'a and k are both taken');
      // The device again, on a new address, with a full batch: ready before k's refusal is handled.
      for (const l of [{ ...device, ip: '10.9.9.9' }, ...manyLeases(9, 70_000)]) assert.ok(queue.offer(lease(l)));
      await waitFor('28 reservations', async () => (await hostRows(db)).length === 28, 30_000, 100);
      await writer.stop();
      const rows = await hostRows(db);
      assert.equal(rows.find((r) => r.mac === device.mac)?.ip, '10.9.9.9', 'the device ends on its newer address');
    } finally {
      await writer.stop();
      await database.end();
      await c.end();
    }
  });
});
