// The one-round-trip write sends untrusted values as SQL literals: every value must reach
// PostgreSQL exactly as it was, and none may change the statement.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { arrayLiteral, byteaLiteral, intLiteral, LiteralError, textLiteral } from '../src/db/literals';
import { writeReservations } from '../src/db/reservations';
import { Lease, parseHwaddr, parseIPv4, sanitizeHostname } from '../src/lease';
import { reservations } from './helpers/leases';
import { connect, TestCluster } from './helpers/pg';

let cluster: TestCluster;
let c: pg.Client;
before(async () => {
  cluster = TestCluster.start();
  c = await connect(await cluster.freshDatabase());
});
after(async () => {
  await c.end();
  cluster.stop();
});

const RUNS = 300;

describe('SQL literals against a real PostgreSQL', () => {
  test('any text without NUL round-trips exactly; NUL is refused', async () => {
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.string({ unit: 'grapheme-composite' }), { maxLength: 40 }), async (values) => {
        tried += values.length;
        const clean = values.map((v) => v.replaceAll('\0', ''));
        const { rows } = await c.query<{ v: string }>(`SELECT unnest(${arrayLiteral(clean.map(textLiteral), 'text')}) AS v`);
        assert.deepEqual(
          rows.map((r) => r.v),
          clean,
        );
      }),
      { seed: 20261127, numRuns: RUNS },
    );
    // Quotes, backslashes and dollar quotes chosen to break out of a naive literal.
    for (const v of ["'); DROP TABLE hosts; --", '\\', "\\'", "E'\\x00'", '$$', "''''", 'a\\\\b', '\u2028', 'ü😀']) {
      const { rows } = await c.query<{ v: string }>(`SELECT ${textLiteral(v)} AS v`);
      assert.equal(rows[0].v, v);
    }
    assert.throws(() => textLiteral('a\0b'), LiteralError);
    console.log(`sql literals: ${tried} text values`);
  });

  test('bytes round-trip as bytea, integers only when safe', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ minLength: 0, maxLength: 20 }), { maxLength: 20 }), async (values) => {
        const bufs = values.map((v) => Buffer.from(v));
        const { rows } = await c.query<{ v: Buffer }>(`SELECT unnest(${arrayLiteral(bufs.map(byteaLiteral), 'bytea')}) AS v`);
        assert.deepEqual(
          rows.map((r) => r.v.toString('hex')),
          bufs.map((b) => b.toString('hex')),
        );
      }),
      { seed: 20261127, numRuns: RUNS },
    );
    assert.equal(intLiteral(4294967295), '4294967295');
    for (const bad of [1.5, Number.NaN, Infinity, 2 ** 60]) assert.throws(() => intLiteral(bad), LiteralError);
  });

  test('hostile hostnames go through the one-round-trip write unchanged, and the table survives', async () => {
    const names = ["'); DROP TABLE hosts; --", "x' || (SELECT 1) || '", '\\', "E'\\''", '$q$ $q$', 'ü-😀-host'];
    const leases: Lease[] = names.map((n, i) => ({
      address: parseIPv4(`10.77.0.${i + 10}`),
      hwaddr: parseHwaddr(`0c:c4:7a:77:00:${(i + 16).toString(16)}`),
      subnetId: 1,
      hostname: sanitizeHostname(n),
      source: 'memfile',
    }));
    const results = await writeReservations(c, 'upsert', leases);
    assert.deepEqual(
      results.map((r) => r.outcome),
      names.map(() => 'created'),
    );
    const rows = await reservations(c);
    for (const l of leases) assert.equal(rows.find((r) => r.ip === `10.77.0.${(l.address & 0xff).toString()}`)?.hostname, l.hostname);
  });
});
