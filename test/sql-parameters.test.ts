// A batch reaches PostgreSQL as bound parameters of kea_lm_write_reservations, text as its UTF-8
// bytes: every value must arrive exactly as it was, and none may change the statement, whatever the
// session's client_encoding (including the ones with a 0x5C trail byte) or standard_conforming_strings.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { classifyReservations, writeReservations, WritePath } from '../src/db/reservations';
import type { Lease } from '../src/lease';
import { connect, TestCluster } from './helpers/pg';

let cluster: TestCluster;
let truth: pg.Client;
let c: pg.Client;
before(async () => {
  cluster = TestCluster.start();
  const db = await cluster.freshDatabase();
  truth = await connect(db);
  c = await connect(db);
});
after(async () => {
  await c.end();
  await truth.end();
  cluster.stop();
});

const RUNS = 60;
// Characters that break naive escaping: quotes, backslashes, array-literal syntax, dollar quotes,
// and characters whose SJIS/BIG5/GBK encodings end in 0x5C ("ソ", "表", "功", "許"), plus C1 bytes.
const HOSTILE = ["'", '\\', '"', '{', '}', ',', '$$', "E'", 'ソ', '表', '功', '許', '\u0083', '\u00a5', '\u2028', '😀', ' ', 'NULL'];
const hostname = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  {
    weight: 6,
    arbitrary: fc
      .array(fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ unit: 'grapheme', maxLength: 4 })), { maxLength: 24 })
      .map((parts) => parts.join('').replaceAll('\0', '')),
  },
);
const batch = fc.array(
  fc.record({ hostname, mac: fc.uint8Array({ minLength: 0, maxLength: 18 }), subnetId: fc.integer({ min: 1, max: 2 ** 32 - 1 }) }),
  {
    minLength: 1,
    maxLength: 30,
  },
);

function leasesOf(items: Array<{ hostname: string | null; mac: Uint8Array; subnetId: number }>, run: number): Lease[] {
  // Unique MAC (index appended) and address per lease, so every one must come back 'created'.
  return items.map((it, i) => ({
    address: 0x0a000000 + run * 64 + i,
    hwaddr: Buffer.concat([Buffer.from(it.mac), Buffer.from([i])]),
    subnetId: it.subnetId,
    hostname: it.hostname,
    source: 'memfile',
  }));
}

async function stored(): Promise<Map<string, { hostname: string | null; subnet: number; ip: number }>> {
  const { rows } = await truth.query<{ id: Buffer; hostname: string | null; subnet: string; ip: string }>(
    'SELECT dhcp_identifier AS id, hostname, dhcp4_subnet_id AS subnet, ipv4_address AS ip FROM hosts',
  );
  return new Map(rows.map((r) => [r.id.toString('hex'), { hostname: r.hostname, subnet: Number(r.subnet), ip: Number(r.ip) }]));
}

const SESSIONS = [
  { encoding: 'UTF8', scs: 'on' },
  { encoding: 'UTF8', scs: 'off' },
  { encoding: 'SJIS', scs: 'off' },
  { encoding: 'BIG5', scs: 'off' },
  { encoding: 'GBK', scs: 'off' },
  { encoding: 'GB18030', scs: 'on' },
];

describe('bound parameters against a real PostgreSQL', () => {
  for (const { encoding, scs } of SESSIONS)
    for (const path of ['upsert', 'fallback'] as WritePath[])
      test(`client_encoding ${encoding}, standard_conforming_strings ${scs}, ${path}: any text and bytes round-trip exactly`, async () => {
        await c.query(`SET client_encoding = '${encoding}'`);
        await c.query(`SET standard_conforming_strings = ${scs}`);
        // The check-then-insert path is for schemas without an arbiter: take Kea's away meanwhile.
        if (path === 'fallback') await truth.query('DROP INDEX key_dhcp4_identifier_subnet_id');
        try {
          let run = 0;
          let values = 0;
          await fc.assert(
            fc.asyncProperty(batch, async (items) => {
              await truth.query('DELETE FROM hosts');
              const leases = leasesOf(items, run++ % 1000);
              values += leases.length;
              const decided = await classifyReservations(c, leases);
              assert.deepEqual(
                decided.map((d) => d.action),
                leases.map(() => 'create'),
              );
              const results = await writeReservations(c, path, leases);
              assert.deepEqual(
                results.map((r) => r.outcome),
                leases.map(() => 'created'),
              );
              const rows = await stored();
              assert.equal(rows.size, leases.length, 'exactly one row per lease, nothing else');
              for (const l of leases) {
                // The well-formed UTF-8 of the string (what Buffer.from sends) is what is stored.
                const expected = l.hostname === null ? null : Buffer.from(l.hostname, 'utf8').toString('utf8');
                assert.deepEqual(rows.get(l.hwaddr.toString('hex')), { hostname: expected, subnet: l.subnetId, ip: l.address });
              }
            }),
            { seed: 20261202, numRuns: RUNS },
          );
          console.log(`${encoding}/${scs}/${path}: ${values} leases round-tripped`);
        } finally {
          await c.query('RESET client_encoding');
          await c.query('RESET standard_conforming_strings');
          if (path === 'fallback') {
            await truth.query(
              `CREATE UNIQUE INDEX key_dhcp4_identifier_subnet_id ON hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id)
                WHERE dhcp4_subnet_id IS NOT NULL AND dhcp4_subnet_id <> 0`,
            );
          }
          await truth.query('DELETE FROM hosts');
        }
      });

  test('a NUL in text is refused as data (SQLSTATE class 22), writes nothing, and the session goes on', async () => {
    const lease: Lease = { address: 0x0a010001, hwaddr: Buffer.from([2, 1, 0, 0, 0, 1]), subnetId: 1, hostname: 'a\0b', source: 'memfile' };
    await assert.rejects(writeReservations(c, 'upsert', [lease]), (err: { code?: string }) => /^22/.test(err.code ?? ''));
    assert.equal((await stored()).size, 0);
    const [ok] = await writeReservations(c, 'upsert', [{ ...lease, hostname: 'ab' }]);
    assert.equal(ok.outcome, 'created');
    await truth.query('DELETE FROM hosts');
  });
});
