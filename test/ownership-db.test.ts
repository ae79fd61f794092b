import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { writeReservations, WritePath } from '../src/db/reservations';
import { Lease, parseHwaddr, parseIPv4 } from '../src/lease';
import type { DbOptions } from '../src/options';
import { OWNER_KEY, readMark } from '../src/ownership';
import { connect, TestCluster } from './helpers/pg';
import { insertLeases, macFor, macHex, reservations } from './helpers/leases';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

function lease(ip: string, mac: string, hostname: string | null = null, source: Lease['source'] = 'memfile', subnetId = 1): Lease {
  return { address: parseIPv4(ip), hwaddr: parseHwaddr(mac), subnetId, hostname, source };
}

export const OPS_MAC = '02:aa:00:00:ee:01';

/** The operator's hand-made reservation from issue 8. */
export async function insertOperatorRow(
  c: pg.ClientBase,
  mac = OPS_MAC,
  ip = '10.0.200.1',
  subnet = 1,
  ctx: string | null = '{"owner":"ops"}',
): Promise<void> {
  await c.query(
    `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
     VALUES (decode($1, 'hex'), 0, $2, $3, 'ops-pinned', $4)`,
    [macHex(mac), subnet, parseIPv4(ip), ctx],
  );
}

for (const path of ['upsert', 'fallback'] as WritePath[]) {
  describe(`ownership in the write statement (${path})`, () => {
    let c: pg.Client;
    let db: DbOptions;
    before(async () => {
      db = await cluster.freshDatabase();
      c = await connect(db);
      if (path === 'fallback') await c.query('DROP INDEX key_dhcp4_identifier_subnet_id');
    });
    after(() => c.end());

    test("the operator's reservation survives unchanged: address, hostname, user_context (both sources)", async () => {
      await insertOperatorRow(c);
      await insertLeases(c, [{ ip: '10.0.200.9', mac: OPS_MAC, hostname: 'laptop' }]);
      for (const source of ['memfile', 'database'] as const) {
        const [r] = await writeReservations(c, path, [lease('10.0.200.9', OPS_MAC, 'laptop', source)]);
        assert.equal(r.outcome, 'foreign', source);
      }
      const rows = (await reservations(c)).filter((r) => r.mac === OPS_MAC);
      assert.deepEqual(
        rows.map((r) => [r.ip, r.hostname, r.user_context]),
        [['10.0.200.1', 'ops-pinned', '{"owner":"ops"}']],
      );
    });

    test('new rows carry the mark; only marked rows are updated, keeping their other keys', async () => {
      const [created] = await writeReservations(c, path, [lease('10.4.0.1', '02:00:00:04:00:01', 'a')]);
      assert.equal(created.outcome, 'created');
      let row = (await reservations(c)).find((r) => r.mac === '02:00:00:04:00:01');
      const mark = readMark(row?.user_context);
      assert.equal(mark?.source, 'memfile');
      assert.ok(Math.abs(Date.parse(mark?.created ?? '') - Date.now()) < 60_000);
      // An operator adds a note beside the mark: the row stays the monitor's, the note stays.
      await c.query(`UPDATE hosts SET user_context = $1 WHERE host_id = $2`, [
        JSON.stringify({ note: 'rack 4', ...JSON.parse(row?.user_context ?? '') }),
        created.hostId,
      ]);
      const [updated] = await writeReservations(c, path, [lease('10.4.0.2', '02:00:00:04:00:01', 'b')]);
      assert.equal(updated.outcome, 'updated');
      row = (await reservations(c)).find((r) => r.mac === '02:00:00:04:00:01');
      assert.equal(row?.ip, '10.4.0.2');
      assert.equal(JSON.parse(row?.user_context ?? '').note, 'rack 4');
      assert.equal(readMark(row?.user_context)?.created, mark?.created);

      // Unmarked, non-JSON and malformed-mark rows are all foreign.
      for (const [i, ctx] of [
        null,
        'free text {',
        '{"kea-lease-monitor":true}',
        `{"${OWNER_KEY}":{"created":1,"source":"memfile"}}`,
      ].entries()) {
        const mac = `02:00:00:04:01:0${i}`;
        await insertOperatorRow(c, mac, `10.4.1.${i}`, 1, ctx);
        const [r] = await writeReservations(c, path, [lease(`10.4.2.${i}`, mac, 'renamed')]);
        assert.equal(r.outcome, 'foreign', String(ctx));
        const kept = (await reservations(c)).find((x) => x.mac === mac);
        assert.deepEqual([kept?.ip, kept?.hostname, kept?.user_context], [`10.4.1.${i}`, 'ops-pinned', ctx]);
      }
    });

    test('database-sourced leases are written only when lease4 holds them live', async () => {
      const now = Math.floor(Date.now() / 1000);
      await insertLeases(c, [
        { ip: '10.6.0.1', mac: '02:00:00:06:00:01', hostname: 'real' },
        { ip: '10.6.0.2', mac: '02:00:00:06:00:02', expire: now - 10 },
        { ip: '10.6.0.3', mac: '02:00:00:06:00:03', state: 2 },
        { ip: '10.6.0.4', mac: '02:00:00:06:00:04', subnet: 9 },
        { ip: '10.6.0.5', mac: '02:00:00:06:00:05', validLifetime: 0 },
        { ip: '10.6.0.6', mac: '02:00:00:06:00:66' },
      ]);
      const results = await writeReservations(c, path, [
        lease('10.6.0.1', '02:00:00:06:00:01', 'real', 'database'),
        lease('10.6.0.2', '02:00:00:06:00:02', null, 'database'),
        lease('10.6.0.3', '02:00:00:06:00:03', null, 'database'),
        lease('10.6.0.4', '02:00:00:06:00:04', null, 'database'),
        lease('10.6.0.5', '02:00:00:06:00:05', null, 'database'),
        lease('10.6.0.6', '02:00:00:06:00:06', null, 'database'), // MAC differs from lease4's
        lease('10.6.0.7', '02:00:00:06:00:07', null, 'database'), // no lease at all
      ]);
      assert.deepEqual(
        results.map((r) => r.outcome),
        ['created', 'stale', 'stale', 'stale', 'stale', 'stale', 'stale'],
      );
      // A hint cannot rename a real device: the hostname counts only when lease4 has the same one.
      const [renamed] = await writeReservations(c, path, [lease('10.6.0.1', '02:00:00:06:00:01', 'forged-name', 'database')]);
      assert.equal(renamed.outcome, 'unchanged');
      const row = (await reservations(c)).filter((r) => r.ip.startsWith('10.6.0.'));
      assert.deepEqual(
        row.map((r) => [r.mac, r.hostname]),
        [['02:00:00:06:00:01', 'real']],
      );
    });

    test('the per-subnet cap holds against five writers racing 5,000 new devices, counting only own rows', async () => {
      await insertOperatorRow(c, '02:00:00:07:ff:01', '10.7.255.1', 70);
      await insertOperatorRow(c, '02:00:00:07:ff:02', '10.7.255.2', 70);
      const [first] = await writeReservations(c, path, [lease('10.7.254.1', '02:00:00:07:fe:01', null, 'memfile', 70)], {
        maxPerSubnet: 100,
      });
      assert.equal(first.outcome, 'created');
      const clients = await Promise.all(Array.from({ length: 5 }, () => connect(db)));
      try {
        const leases = Array.from({ length: 5000 }, (_, i) =>
          lease(`10.7.${i >> 8}.${i & 255}`, macFor(0x070000 + i), null, 'memfile', 70),
        );
        const results = (
          await Promise.all(
            clients.map((cl, k) => writeReservations(cl, path, leases.slice(k * 1000, (k + 1) * 1000), { maxPerSubnet: 100 })),
          )
        ).flat();
        const count = (o: string) => results.filter((r) => r.outcome === o).length;
        assert.equal(count('created'), 99, 'the cap counts the one own row already there, not the operator rows');
        assert.equal(count('limit'), 4901);
        // Another subnet is capped on its own.
        const [other] = await writeReservations(c, path, [lease('10.7.0.1', '02:00:00:07:00:99', null, 'memfile', 71)], {
          maxPerSubnet: 100,
        });
        assert.equal(other.outcome, 'created');
        // Updates of own rows are never limited.
        const own = results.find((r) => r.outcome === 'created');
        const [moved] = await writeReservations(c, path, [{ ...own!.lease, address: parseIPv4('10.7.250.250') }], { maxPerSubnet: 100 });
        assert.equal(moved.outcome, 'updated');
      } finally {
        await Promise.all(clients.map((cl) => cl.end()));
      }
      const { rows } = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM hosts WHERE dhcp4_subnet_id = 70`);
      assert.equal(rows[0].n, 102, '100 own rows + 2 operator rows');
    });
  });
}
