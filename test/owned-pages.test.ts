// reservations list streams: the monitor's rows a page at a time, with lease4's liveness in the same query.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { writeReservations } from '../src/db/reservations';
import { parseHwaddr, parseIPv4 } from '../src/lease';
import { listOwned, pagesOfOwned } from '../src/lifecycle/owned';
import { insertLeases, ipToInt, manyLeases } from './helpers/leases';
import { connect, TestCluster } from './helpers/pg';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

test('pages of 2 give every owned row once, in host_id order, never an operator row, with lease4 liveness', async () => {
  const db = await cluster.freshDatabase();
  const c = await connect(db);
  try {
    const devices = manyLeases(7).map((l) => ({ ...l, subnet: 1 }));
    await writeReservations(
      c,
      'upsert',
      devices.map((d) => ({
        address: parseIPv4(d.ip),
        hwaddr: parseHwaddr(d.mac),
        subnetId: 1,
        hostname: null,
        source: 'memfile' as const,
      })),
    );
    // Live leases for the odd ones; an operator's row and a row with broken user_context in between.
    await insertLeases(
      c,
      devices.filter((_, i) => i % 2 === 1),
    );
    await c.query(
      `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, user_context) VALUES
        (decode('02aa0000ee01', 'hex'), 0, 1, $1, '{"owner":"ops"}'), (decode('02aa0000ee02', 'hex'), 0, 1, $2, '{"kea-lease-monitor":')`,
      [ipToInt('10.9.9.1'), ipToInt('10.9.9.2')],
    );
    const pages: Array<Array<{ mac: string; host_id: number; live?: boolean }>> = [];
    for await (const page of pagesOfOwned(c, { live: true, pageSize: 2 })) pages.push(page);
    const rows = pages.flat();
    assert.ok(pages.every((p) => p.length <= 2) && pages.length >= 4, `${pages.length} pages`);
    assert.deepEqual(
      rows.map((r) => r.mac),
      devices.map((d) => d.mac),
    );
    assert.deepEqual(
      rows.map((r) => r.host_id),
      (await listOwned(c)).map((r) => r.host_id),
      'the same rows as the whole list',
    );
    assert.deepEqual(
      rows.map((r) => r.live),
      devices.map((_, i) => i % 2 === 1),
    );
    const noLiveness = [];
    for await (const page of pagesOfOwned(c, { live: false })) noLiveness.push(...page);
    assert.ok(noLiveness.every((r) => !('live' in r)));
  } finally {
    await c.end();
  }
});
