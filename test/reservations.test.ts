import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { CALL_NAME, CALL_TEXT, callValues } from '../src/db/reservation-call';
import { classifyDbError } from '../src/db/errors';
import { listMigrations, WRITER_MIGRATION } from '../src/db/migrations';
import { classifyReservations, writeReservations, WritePath } from '../src/db/reservations';
import { FatalError } from '../src/errors';
import { Lease, parseHwaddr, parseIPv4, sanitizeHostname } from '../src/lease';
import { connect, keaSchemas, TestCluster } from './helpers/pg';
import { insertLeases, reservations } from './helpers/leases';

function lease(ip: string, mac: string, hostname: string | null = null, subnetId = 1): Lease {
  return { address: parseIPv4(ip), hwaddr: parseHwaddr(mac), subnetId, hostname, source: 'memfile' };
}

async function seqValue(c: pg.Client): Promise<number> {
  const { rows } = await c.query<{ last_value: string; is_called: boolean }>('SELECT last_value, is_called FROM hosts_host_id_seq');
  return Number(rows[0].last_value) + (rows[0].is_called ? 0 : -1);
}

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

// Every tested Kea release's schema (2.2 / 2.6 / 3.0), each through both write paths.
for (const schema of keaSchemas())
  for (const path of ['upsert', 'fallback'] as WritePath[]) {
    describe(`${schema.label}: reservation writer (${path})`, () => {
      let c: pg.Client;
      before(async () => {
        c = await connect(await cluster.freshDatabase(schema));
        // The fallback path is for schemas with no arbiter: take Kea's away to prove it needs none.
        if (path === 'fallback') await c.query('DROP INDEX key_dhcp4_identifier_subnet_id');
      });
      after(() => c.end());

      test('inserts, then updates, then does nothing, without drawing host_id on the no-op', async () => {
        const [created] = await writeReservations(c, path, [lease('10.1.0.5', 'aa:bb:cc:00:00:01', 'bmc-1')]);
        assert.equal(created.outcome, 'created');
        assert.ok(created.hostId && created.hostId > 0);

        const [updated] = await writeReservations(c, path, [lease('10.1.0.6', 'aa:bb:cc:00:00:01', 'bmc-1')]);
        assert.equal(updated.outcome, 'updated');
        assert.equal(updated.hostId, created.hostId);

        const seqBefore = await seqValue(c);
        for (let i = 0; i < 5; i++) {
          const [same] = await writeReservations(c, path, [lease('10.1.0.6', 'aa:bb:cc:00:00:01', 'bmc-1')]);
          assert.equal(same.outcome, 'unchanged');
          assert.equal(same.hostId, created.hostId);
        }
        // A renewal without a hostname keeps the reservation's hostname and changes nothing.
        const [renewal] = await writeReservations(c, path, [lease('10.1.0.6', 'aa:bb:cc:00:00:01', null)]);
        assert.equal(renewal.outcome, 'unchanged');
        assert.equal(await seqValue(c), seqBefore, 'no-ops must not consume host_id values');

        const rows = (await reservations(c)).filter((r) => r.mac === 'aa:bb:cc:00:00:01');
        assert.deepEqual(
          rows.map((r) => [r.ip, r.hostname, r.subnet]),
          [['10.1.0.6', 'bmc-1', 1]],
        );
      });

      test('never reserves an address another identifier holds in the same subnet', async () => {
        const [first] = await writeReservations(c, path, [lease('10.1.1.1', 'aa:bb:cc:00:01:01')]);
        assert.equal(first.outcome, 'created');
        const [second] = await writeReservations(c, path, [lease('10.1.1.1', 'aa:bb:cc:00:01:02')]);
        assert.equal(second.outcome, 'conflict');
        assert.equal(second.hostId, first.hostId, 'a conflict names the holder');
        // Same address in another subnet is a different address space.
        const [other] = await writeReservations(c, path, [lease('10.1.1.1', 'aa:bb:cc:00:01:02', null, 2)]);
        assert.equal(other.outcome, 'created');
        const holders = (await reservations(c)).filter((r) => r.ip === '10.1.1.1' && r.subnet === 1);
        assert.equal(holders.length, 1);
      });

      test('within one batch the newest holder of an address wins', async () => {
        const results = await writeReservations(c, path, [
          lease('10.1.2.1', 'aa:bb:cc:00:02:01'),
          lease('10.1.2.2', 'aa:bb:cc:00:02:02'),
          lease('10.1.2.1', 'aa:bb:cc:00:02:03'),
        ]);
        assert.deepEqual(
          results.map((r) => r.outcome),
          ['superseded', 'created', 'created'],
        );
        const holders = (await reservations(c)).filter((r) => r.ip === '10.1.2.1');
        assert.deepEqual(
          holders.map((h) => h.mac),
          ['aa:bb:cc:00:02:03'],
        );
      });

      test('a batch of 2,000 new leases is one statement and all become reservations', async () => {
        const batch = Array.from({ length: 2000 }, (_, i) =>
          lease(
            `10.2.${i >> 8}.${i & 255}`,
            `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
            `n${i}`,
            7,
          ),
        );
        const results = await writeReservations(c, path, batch);
        assert.equal(results.filter((r) => r.outcome === 'created').length, 2000);
        const again = await writeReservations(c, path, batch);
        assert.equal(again.filter((r) => r.outcome === 'unchanged').length, 2000);
        const { rows } = await c.query('SELECT count(*)::int AS n FROM hosts WHERE dhcp4_subnet_id = 7');
        assert.equal(rows[0].n, 2000);
      });

      test('hostile hostnames are stored as data, sanitised', async () => {
        const nasty = [
          "x'); DROP TABLE hosts; --",
          '$(reboot)`id`;|&>/etc/passwd',
          '../../../../etc/shadow',
          'nul\u0000byte\u0007bell\u001b[31m',
          Buffer.from([0x66, 0x6f, 0xff, 0xfe, 0x6f]).toString('latin1'),
          'é'.repeat(5000),
        ];
        const batch = nasty.map((h, i) => lease(`10.3.0.${i + 1}`, `aa:bb:cc:00:03:0${i}`, sanitizeHostname(h)));
        const results = await writeReservations(c, path, batch);
        assert.ok(results.every((r) => r.outcome === 'created'));
        const stored = (await reservations(c)).filter((r) => r.ip.startsWith('10.3.0.'));
        assert.equal(stored[0].hostname, "x'); DROP TABLE hosts; --");
        assert.equal(stored[3].hostname, 'nulbytebell[31m');
        assert.ok(Buffer.byteLength(stored[5].hostname ?? '', 'utf8') <= 255);
        assert.equal(stored[5].hostname, 'é'.repeat(127));
      });
    });
  }

describe('durability of the monitor’s own commits', () => {
  test('durable: false turns synchronous_commit off for that transaction only; the default keeps it on', async () => {
    const c = await connect(await cluster.freshDatabase());
    try {
      // The throwaway cluster runs with synchronous_commit = off; a real one has it on.
      await c.query('SET synchronous_commit = on');
      const inTransaction = async (durable: boolean | undefined, mac: string): Promise<string> => {
        await c.query('BEGIN');
        const [r] = await writeReservations(c, 'upsert', [lease(`10.4.0.${mac.slice(-1)}`, mac)], undefined, { durable });
        assert.equal(r.outcome, 'created');
        const { rows } = await c.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
        await c.query('COMMIT');
        return rows[0].synchronous_commit;
      };
      assert.equal(await inTransaction(false, 'aa:bb:cc:00:04:01'), 'off');
      const { rows } = await c.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
      assert.equal(rows[0].synchronous_commit, 'on', 'the session keeps its own setting');
      assert.equal(await inTransaction(undefined, 'aa:bb:cc:00:04:02'), 'on');
      assert.equal(await inTransaction(true, 'aa:bb:cc:00:04:03'), 'on');
    } finally {
      await c.end();
    }
  });
});

describe('plans of the write', () => {
  test('a small batch’s cached plans, made on empty tables, still look up one row once the tables have grown', async () => {
    const db = await cluster.freshDatabase();
    const c = await connect(db);
    try {
      const fromLease4 = (ip: string, mac: string): Lease => ({ ...lease(ip, mac), source: 'database' });
      await insertLeases(c, [{ ip: '10.7.0.1', mac: 'aa:bb:cc:00:08:01' }]);
      assert.equal((await writeReservations(c, 'upsert', [fromLease4('10.7.0.1', 'aa:bb:cc:00:08:01')]))[0].outcome, 'created');
      // 20,000 leases and reservations in the same subnet, after this session planned its statements.
      await cluster.sql(
        db.database,
        `INSERT INTO lease4 (address, hwaddr, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state)
         SELECT 168755200 + g, decode('02ee' || lpad(to_hex(g), 8, '0'), 'hex'), 3600, now() + interval '1 hour', 1, false, false, 'n' || g, 0
           FROM generate_series(1, 20000) g;
         INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname)
         SELECT decode('02ef' || lpad(to_hex(g), 8, '0'), 'hex'), 0, 1, 168820736 + g, 'o' || g FROM generate_series(1, 20000) g`,
      );
      await insertLeases(c, [{ ip: '10.7.0.2', mac: 'aa:bb:cc:00:08:02' }]);
      const { rows } = await c.query<{ 'QUERY PLAN': [{ Plan: Record<string, number> }] }>(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${CALL_TEXT}`,
        callValues([{ lease: fromLease4('10.7.0.2', 'aa:bb:cc:00:08:02'), idx: 0 }], {
          mode: 'upsert',
          maxPerSubnet: null,
          durable: false,
        }),
      );
      const plan = rows[0]['QUERY PLAN'][0].Plan;
      const blocks = plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
      // One lease: a few index lookups and one insert (about 35 blocks); a scan of the subnet reads hundreds.
      assert.ok(blocks < 100, `one lease's write touched ${blocks} blocks`);
      assert.equal((await reservations(c)).filter((r) => r.mac === 'aa:bb:cc:00:08:02').length, 1);
    } finally {
      await c.end();
    }
  });

  test('a small batch’s plan settings end with the call; small and large batches decide alike', async () => {
    const c = await connect(await cluster.freshDatabase());
    try {
      const settings = async () =>
        (await c.query<{ s: string; p: string }>(`SELECT current_setting('enable_seqscan') AS s, current_setting('plan_cache_mode') AS p`))
          .rows[0];
      await c.query('BEGIN');
      const before = await settings();
      const small = Array.from({ length: 16 }, (_, i) =>
        lease(`10.6.0.${i + 1}`, `aa:bb:cc:00:06:${(i + 1).toString(16).padStart(2, '0')}`),
      );
      const large = Array.from({ length: 17 }, (_, i) =>
        lease(`10.6.1.${i + 1}`, `aa:bb:cc:00:07:${(i + 1).toString(16).padStart(2, '0')}`),
      );
      const first = await writeReservations(c, 'upsert', small);
      assert.deepEqual(await settings(), before, 'the generic-plan settings of a small batch must not reach the caller');
      assert.deepEqual(
        [...first, ...(await writeReservations(c, 'upsert', large))].map((r) => r.outcome),
        Array(33).fill('created'),
      );
      // Renewed, then moved: the same decisions through either plan.
      const again = [...small, ...large].map((l) => ({ ...l, address: l.address + 100 }));
      assert.deepEqual(
        [...(await writeReservations(c, 'upsert', again.slice(0, 16))), ...(await writeReservations(c, 'upsert', again.slice(16)))].map(
          (r) => r.outcome,
        ),
        Array(33).fill('updated'),
      );
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
  });
});

describe('the call as a prepared statement', () => {
  test('is parsed once per connection and still writes after the write function is dropped and installed again', async () => {
    const db = await cluster.freshDatabase();
    const c = await connect(db);
    const admin = await connect(db);
    const prepared = async (): Promise<string[]> =>
      (await c.query<{ name: string }>('SELECT name FROM pg_prepared_statements')).rows.map((r) => r.name);
    try {
      assert.deepEqual(await prepared(), []);
      for (const n of [1, 2, 3]) {
        const [r] = await writeReservations(c, 'upsert', [lease(`10.6.0.${n}`, `aa:bb:cc:00:06:0${n}`)]);
        assert.equal(r.outcome, 'created');
      }
      assert.deepEqual(await prepared(), [CALL_NAME], 'one statement, prepared by the first call and reused');
      // What `db rollback` then `db migrate` do to the function under a running monitor: a new function
      // (new OID) of the same signature; the prepared statement is re-planned, not broken.
      const m = listMigrations().find((x) => x.id === WRITER_MIGRATION)!;
      await admin.query(m.down);
      await admin.query(m.up);
      const [r] = await writeReservations(c, 'upsert', [lease('10.6.0.4', 'aa:bb:cc:00:06:04')]);
      assert.equal(r.outcome, 'created');
      assert.equal((await reservations(c)).length, 4);
      // A function whose result type changed breaks the prepared plan once: transient, so the
      // writer retries on a fresh connection, which prepares the call again.
      await admin.query(m.down);
      await admin.query(
        m.up
          .replace('RETURNS TABLE (idx int, action text,', 'RETURNS TABLE (idx bigint, action text,')
          .replace(/^CREATE OR REPLACE/m, 'CREATE'),
      );
      await assert.rejects(writeReservations(c, 'upsert', [lease('10.6.0.5', 'aa:bb:cc:00:06:05')]), (err: unknown) => {
        assert.match(String((err as Error).message), /cached plan must not change result type/);
        assert.equal(classifyDbError(err), 'transient');
        return true;
      });
      await admin.query(m.down);
      await admin.query(m.up);
      const fresh = await connect(db);
      try {
        const [again] = await writeReservations(fresh, 'upsert', [lease('10.6.0.5', 'aa:bb:cc:00:06:05')]);
        assert.equal(again.outcome, 'created');
      } finally {
        await fresh.end();
      }
    } finally {
      await c.end();
      await admin.end();
    }
  });
});

test('without `db migrate` the writer refuses with a message naming it', async () => {
  const c = await connect(await cluster.freshDatabase(undefined, { pristine: true }));
  try {
    for (const attempt of [
      () => writeReservations(c, 'upsert', [lease('10.5.0.1', 'aa:bb:cc:00:05:01')]),
      () => classifyReservations(c, [lease('10.5.0.1', 'aa:bb:cc:00:05:01')]),
    ])
      await assert.rejects(attempt(), (err: unknown) => err instanceof FatalError && /db migrate/.test(err.message));
  } finally {
    await c.end();
  }
});
