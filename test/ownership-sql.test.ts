// The ownership mark decided in SQL (kea_lm_owned, migrations/0004) and in TypeScript (readMark) is
// one rule, it holds under standard_conforming_strings = off, and one malformed user_context fails
// neither a capped batch nor list, prune or purge.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { writeReservations, WritePath } from '../src/db/reservations';
import { deleteOwned, listOwned } from '../src/lifecycle/owned';
import type { Lease } from '../src/lease';
import { CREATED_PATTERN, OWNER_KEY, readMark } from '../src/ownership';
import { connect, TestCluster } from './helpers/pg';

let cluster: TestCluster;
before(() => (cluster = TestCluster.start()));
after(() => cluster.stop());

const CREATED = '2026-12-02T06:00:00.000Z';
// As Kea's own API writes user-context: a space after every colon and comma.
const SPACED = `{"note": "ops", "${OWNER_KEY}": {"created": "${CREATED}", "source": "memfile"}}`;
// Passes any "starts like an object" test, then is not JSON at all.
const BROKEN = `{"${OWNER_KEY}": {"created": "${CREATED}", "source": "memfile"`;

async function offSession(db: Parameters<typeof connect>[0]): Promise<pg.Client> {
  const c = await connect(db);
  await c.query('SET standard_conforming_strings = off');
  return c;
}

async function insertHost(c: pg.ClientBase, mac: number, ip: number, subnet: number, ctx: string | null): Promise<number> {
  const { rows } = await c.query<{ host_id: number }>(
    `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
     VALUES ($1, 0, $2, $3, 'h', $4) RETURNING host_id`,
    [Buffer.from([2, 9, 0, 0, 0, mac]), subnet, ip, ctx],
  );
  return rows[0].host_id;
}

const lease = (mac: number, ip: number, subnetId: number): Lease => ({
  address: ip,
  hwaddr: Buffer.from([2, 9, 0, 0, 0, mac]),
  subnetId,
  hostname: 'h2',
  source: 'memfile',
});

describe('ownership in SQL and TypeScript', () => {
  test('the created pattern in migrations/0004 is the one readMark uses', () => {
    const sql = readFileSync(join(__dirname, '..', 'migrations', '0004_reservation_writer.up.sql'), 'utf8');
    assert.ok(sql.includes(`'${CREATED_PATTERN}'`), 'kea_lm_owned must quote CREATED_PATTERN verbatim');
  });

  test('readMark and kea_lm_owned agree on random user_context, under standard_conforming_strings = off', async () => {
    const c = await offSession(await cluster.freshDatabase());
    try {
      // JSON text of objects with and without marks, malformed marks, and broken text.
      const created = fc.oneof(
        { weight: 4, arbitrary: fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }).map((d) => d.toISOString()) },
        {
          weight: 1,
          arbitrary: fc.constantFrom('2026-12-02T06:00Z', '2026-12-02T06:00:00+02:00', '2026-12-02', 'yesterday', '', CREATED + ' '),
        },
        { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
      );
      const mark = fc.oneof(
        { weight: 4, arbitrary: fc.record({ created, source: fc.constantFrom('memfile', 'database', 'other') }) },
        { weight: 1, arbitrary: fc.record({ created: fc.oneof(fc.integer(), fc.constant(null)), source: fc.constant('memfile') }) },
        { weight: 1, arbitrary: fc.constantFrom<unknown>('x', 1, null, []) },
      );
      const safeText = fc.string({ unit: 'grapheme', maxLength: 6 });
      const object = fc.oneof(
        { weight: 4, arbitrary: fc.record({ [OWNER_KEY]: mark, note: safeText }) },
        { weight: 1, arbitrary: fc.record({ note: safeText }) },
      );
      const text = fc.oneof(
        object.map((o) => JSON.stringify(o)),
        object.map((o) => JSON.stringify(o, null, 1)),
        object.map((o) => ' \n' + JSON.stringify(o).replaceAll('":', '": ')),
        object.map((o) => JSON.stringify(o).slice(0, -1)),
        fc.constantFrom(SPACED, BROKEN, '', '   ', '{', '[]', 'null', '{"kea-lease-monitor": {}}', '\\{', '{}'),
        safeText,
      );
      let owned = 0;
      let n = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.oneof({ weight: 9, arbitrary: text }, { weight: 1, arbitrary: fc.constant(null) }), { minLength: 1, maxLength: 40 }),
          async (contexts) => {
            const { rows } = await c.query<{ owned: boolean }>(
              'SELECT kea_lm_owned(t) AS owned FROM unnest($1::text[]) WITH ORDINALITY AS u(t, o) ORDER BY o',
              [contexts],
            );
            contexts.forEach((ctx, i) => {
              n++;
              if (rows[i].owned) owned++;
              assert.equal(rows[i].owned, readMark(ctx) !== null, `user_context ${JSON.stringify(ctx)}`);
            });
          },
        ),
        { seed: 20261202, numRuns: 150 },
      );
      console.log(`ownership agreement: ${n} user_context values, ${owned} owned`);
      assert.ok(owned > n / 20 && n - owned > n / 20, `both answers occur often (${owned} of ${n} owned)`);
      assert.equal(readMark(SPACED)?.created, CREATED);
    } finally {
      await c.end();
    }
  });

  for (const path of ['upsert', 'fallback'] as WritePath[])
    test(`${path}, standard_conforming_strings = off: a spaced mark is the monitor's, and a broken one fails no batch`, async () => {
      const c = await offSession(await cluster.freshDatabase());
      try {
        if (path === 'fallback') await c.query('DROP INDEX key_dhcp4_identifier_subnet_id');
        const mine = await insertHost(c, 1, 0x0a030001, 3, SPACED);
        const broken = await insertHost(c, 2, 0x0a030002, 3, BROKEN);
        // A capped batch in the subnet of the broken row counts the monitor's rows there.
        const results = await writeReservations(c, path, [lease(1, 0x0a030011, 3), lease(2, 0x0a030012, 3), lease(3, 0x0a030013, 3)], {
          maxPerSubnet: 2,
        });
        assert.deepEqual(
          results.map((r) => [r.outcome, r.hostId]),
          [
            ['updated', mine],
            ['foreign', broken],
            ['created', results[2].hostId],
          ],
        );
        const [capped] = await writeReservations(c, path, [lease(4, 0x0a030014, 3)], { maxPerSubnet: 2 });
        assert.equal(capped.outcome, 'limit', 'the spaced row counts toward the cap');

        const listed = await listOwned(c);
        assert.deepEqual(listed.map((r) => r.host_id).sort(), [mine, results[2].hostId].sort());
        // Prune and purge pass every id they are given: the broken row is kept, the pass succeeds.
        const removed = await deleteOwned(c, [mine, broken], false);
        assert.deepEqual(
          removed.map((r) => r.host_id),
          [mine],
        );
        const left = await c.query<{ host_id: number }>('SELECT host_id FROM hosts WHERE host_id = $1', [broken]);
        assert.equal(left.rowCount, 1, 'the broken row is not the monitor’s to delete');
      } finally {
        await c.end();
      }
    });
});
