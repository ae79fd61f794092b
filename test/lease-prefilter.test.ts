// The reconcile pass's query-side filter (src/sources/lease-prefilter.ts) against the selection
// policy itself: for any MAC prefixes and address ranges, PostgreSQL keeps exactly the leases
// selectLease would select (hostname rules are not the query's). Real PostgreSQL, random policies.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import type pg from 'pg';
import { formatIPv4 } from '../src/lease';
import { compilePolicy, selectLease } from '../src/policy/select';
import { leasePrefilter, prefilterSql, prefilterValues } from '../src/sources/lease-prefilter';
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

// Few distinct octets, so prefixes and MACs often share their first bytes.
const octet = fc.constantFrom(0x02, 0xaa, 0xbb, 0xff);
const mac = fc.array(octet, { minLength: 1, maxLength: 8 }).map((b) => Buffer.from(b));
const prefix = fc.array(octet, { minLength: 1, maxLength: 3 }).map((b) => b.map((x) => x.toString(16).padStart(2, '0')).join(':'));
const address = fc.constantFrom(0x0a000000, 0x0a0000ff, 0x0a000100, 0x0a010000, 0xc0a80001, 0xffffffff, 0);
const cidr = fc.tuple(address, fc.integer({ min: 0, max: 32 })).map(([a, bits]) => {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return `${formatIPv4((a & mask) >>> 0)}/${bits}`;
});

test('the query keeps exactly the leases the MAC and address rules select', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(prefix, { maxLength: 2 }),
      fc.array(prefix, { maxLength: 2 }),
      fc.array(cidr, { maxLength: 2 }),
      fc.array(fc.tuple(mac, address), { minLength: 1, maxLength: 30 }),
      async (denyMacPrefix, allowMacPrefix, allowAddress, leases) => {
        const policy = compilePolicy({ subnetIds: [], allowMacPrefix, denyMacPrefix, allowHostname: [], denyHostname: [], allowAddress });
        const filter = leasePrefilter(policy);
        const expected = leases.flatMap(([hwaddr, a], i) =>
          selectLease({ hwaddr, address: a, subnetId: 1, hostname: null }, policy).selected ? [i + 1] : [],
        );
        if (!filter) {
          assert.equal(expected.length, leases.length, 'no MAC or address rule: every lease is selected');
          return;
        }
        const { rows } = await c.query<{ i: string }>(
          `SELECT l.i FROM unnest($1::bytea[], $2::bigint[]) WITH ORDINALITY AS l(hwaddr, address, i) WHERE true ${prefilterSql(3)} ORDER BY l.i`,
          [leases.map(([m]) => m), leases.map(([, a]) => a), ...prefilterValues(filter)],
        );
        assert.deepEqual(
          rows.map((r) => Number(r.i)),
          expected,
        );
      },
    ),
    { numRuns: 300 },
  );
});
