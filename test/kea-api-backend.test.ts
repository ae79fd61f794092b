// KeaApiBackend against a fake kea-dhcp4 control socket (test/helpers/fake-kea.ts, Kea 3.0.4's answers) and a real
// PostgreSQL with the Kea schema, whose lease4 is what confirms a database-sourced lease.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Database } from '../src/db/pool';
import type { DbOptions } from '../src/options';
import { Lease, parseHwaddr } from '../src/lease';
import { M, Metrics } from '../src/metrics';
import { OWNER_KEY } from '../src/ownership';
import { KeaApiBackend } from '../src/writers/kea-api';
import { FakeKea } from './helpers/fake-kea';
import { insertLeases, ipToInt, TestLease } from './helpers/leases';
import { connect, TestCluster } from './helpers/pg';
import { memoryLogger, tempDir } from './helpers/monitor';

const dir = tempDir('klm-kea-fake-');
let cluster: TestCluster;

before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

function lease(l: TestLease, source: Lease['source'] = 'database'): Lease {
  return { address: ipToInt(l.ip), hwaddr: parseHwaddr(l.mac), subnetId: l.subnet ?? 1, hostname: l.hostname ?? null, source };
}

async function withLeases(rows: TestLease[]): Promise<DbOptions> {
  const db = await cluster.freshDatabase();
  const c = await connect(db);
  try {
    await insertLeases(c, rows);
  } finally {
    await c.end();
  }
  return db;
}

interface Setup {
  kea: FakeKea;
  backend: KeaApiBackend;
  metrics: Metrics;
  logs: string[];
  db: Database | null;
  /** reservation-* calls since preflight. */
  calls(): number;
  close(): Promise<void>;
}

async function setup(dbOptions: DbOptions | null, opts: { hostCache?: boolean } = {}): Promise<Setup> {
  const kea = await FakeKea.start(dir, opts);
  const { logger, logs } = memoryLogger('debug');
  const metrics = new Metrics();
  const db = dbOptions ? new Database(dbOptions, 2, logger) : null;
  const backend = new KeaApiBackend({ socketPath: kea.path, concurrency: 4, timeoutMs: 5000, db }, logger, metrics);
  await backend.preflight();
  const base = kea.count();
  return {
    kea,
    backend,
    metrics,
    logs,
    db,
    calls: () => kea.count() - base,
    close: async () => {
      await db?.end();
      await kea.close();
    },
  };
}

const A: TestLease = { ip: '10.0.0.100', mac: '02:de:ad:be:ef:01', hostname: 'pc-a' };
const B: TestLease = { ip: '10.0.0.101', mac: '02:de:ad:be:ef:02', hostname: 'pc-b' };
const C: TestLease = { ip: '10.0.0.102', mac: '02:de:ad:be:ef:03', hostname: 'pc-c' };

describe('KeaApiBackend: every database-sourced lease is confirmed in lease4 before any call', () => {
  test('a forged NOTIFY (no such lease in lease4) is stale, with 0 calls to Kea', async () => {
    const s = await setup(await withLeases([]));
    try {
      const forged = lease({ ip: '10.0.0.100', mac: '02:de:ad:be:ef:01', hostname: 'evil' });
      const results = await s.backend.write([forged]);
      assert.deepEqual(
        results.map((r) => r.outcome),
        ['stale'],
      );
      assert.equal(s.calls(), 0, 'no reservation-* command at all');
      assert.equal(s.kea.hosts.length, 0);
    } finally {
      await s.close();
    }
  });

  test('only the exact live lease counts: another MAC, subnet or address, expired, released or deleted is stale', async () => {
    const now = Math.floor(Date.now() / 1000);
    const s = await setup(
      await withLeases([
        A,
        { ...B, expire: now - 10 },
        { ...C, state: 1 },
        { ip: '10.0.0.103', mac: '02:de:ad:be:ef:04', validLifetime: 0 },
      ]),
    );
    try {
      const batch = [
        lease({ ...A, mac: '02:de:ad:be:ef:99' }), // A's address, another MAC
        lease({ ...A, subnet: 2 }), // A in another subnet
        lease({ ...A, ip: '10.0.0.200' }), // A's MAC at another address (a forged move)
        lease(B), // expired
        lease(C), // state 1 (declined)
        lease({ ip: '10.0.0.103', mac: '02:de:ad:be:ef:04' }), // valid_lifetime 0 (deleted)
      ];
      const results = await s.backend.write(batch);
      assert.deepEqual(
        results.map((r) => r.outcome),
        batch.map(() => 'stale'),
      );
      assert.equal(s.calls(), 0);
      // The real lease itself is written.
      assert.deepEqual(
        (await s.backend.write([lease(A)])).map((r) => r.outcome),
        ['created'],
      );
      assert.equal(s.kea.hosts.length, 1);
      assert.deepEqual([s.kea.hosts[0].mac, s.kea.hosts[0].ip, s.kea.hosts[0].hostname, s.kea.hosts[0].subnetId], [A.mac, A.ip, 'pc-a', 1]);
      assert.equal((s.kea.hosts[0].userContext?.[OWNER_KEY] as { source?: string } | undefined)?.source, 'database');
    } finally {
      await s.close();
    }
  });

  test("a forged rename of a real lease changes nothing: the hostname is lease4's, never the payload's", async () => {
    const s = await setup(await withLeases([A]), { hostCache: true });
    try {
      assert.deepEqual(
        (await s.backend.write([lease(A)])).map((r) => r.outcome),
        ['created'],
      );
      const before = s.calls();
      const renamed = await s.backend.write([lease({ ...A, hostname: 'evil' })]);
      assert.deepEqual(
        renamed.map((r) => [r.outcome, r.lease.hostname]),
        [['unchanged', 'pc-a']],
      );
      assert.equal(s.calls(), before, 'answered from what is known: no call');
      assert.equal(s.kea.hosts[0].hostname, 'pc-a');
      assert.equal(s.kea.count('reservation-update'), 0);
    } finally {
      await s.close();
    }
  });

  test("a forged payload for a real device's address cannot supersede that device's lease in the batch", async () => {
    const s = await setup(await withLeases([A]));
    try {
      const results = await s.backend.write([lease(A), lease({ ...A, mac: '02:de:ad:be:ef:99', hostname: 'evil' })]);
      assert.deepEqual(
        results.map((r) => r.outcome),
        ['created', 'stale'],
      );
      // Among leases Kea's own lease file reported, the newest holder of an address still wins.
      const file = await s.backend.write([lease(B, 'memfile'), lease({ ...B, mac: '02:de:ad:be:ef:98' }, 'memfile')]);
      assert.deepEqual(
        file.map((r) => r.outcome),
        ['superseded', 'created'],
      );
    } finally {
      await s.close();
    }
  });

  test('file-sourced leases (Kea wrote the lease file) are not looked up; without a pool a database lease is never written', async () => {
    const s = await setup(null);
    try {
      const results = await s.backend.write([lease(A, 'memfile'), lease(B, 'database')]);
      assert.deepEqual(
        results.map((r) => r.outcome),
        ['created', 'stale'],
      );
      assert.deepEqual(
        s.kea.hosts.map((h) => h.mac),
        [A.mac],
      );
    } finally {
      await s.close();
    }
  });

  test('lease4 unreadable (no SELECT for the role) is fatal, naming the GRANT; nothing is sent to Kea', async () => {
    const opts = await withLeases([A]);
    const role = `noleases_${process.pid}`;
    await cluster.sql(
      opts.database,
      `CREATE ROLE ${role} LOGIN; GRANT SELECT, INSERT, UPDATE ON hosts TO ${role}; GRANT USAGE ON SEQUENCE hosts_host_id_seq TO ${role}`,
    );
    const s = await setup({ ...opts, user: role });
    try {
      const err = await s.backend.write([lease(A)]).then(
        () => assert.fail('the write succeeded'),
        (e: unknown) => e,
      );
      assert.equal(s.backend.classify(err), 'fatal');
      assert.match((await s.backend.fatal(err)).message, /lacks SELECT on table lease4: GRANT SELECT ON lease4 TO noleases_/);
      assert.equal(s.calls(), 0);
    } finally {
      await s.close();
    }
  });
});

describe('KeaApiBackend: an error answer about one lease is that lease failing, not the batch', () => {
  test('an error text no Kea release has used fails that lease only; the rest of the batch, and the next batch, are written', async () => {
    const s = await setup(await withLeases([A, B, C]));
    try {
      s.kea.answer('reservation-add', (a) => (a.reservation as { 'hw-address': string })['hw-address'] === B.mac, {
        result: 1,
        text: 'an error text no Kea release has used',
      });
      const results = await s.backend.write([lease(A), lease(B)]);
      assert.deepEqual(
        results.map((r) => r.outcome),
        ['created', 'failed'],
      );
      assert.equal(s.metrics.total(M.failed[0]), 1);
      assert.ok(
        s.logs.some((l) => l.includes('Kea refused this reservation; skipped') && l.includes('an error text no Kea release has used')),
        'logged with the text Kea gave',
      );
      assert.deepEqual(
        (await s.backend.write([lease(C)])).map((r) => r.outcome),
        ['created'],
      );
      assert.deepEqual(
        s.kea.hosts.map((h) => h.mac),
        [A.mac, C.mac],
      );
    } finally {
      await s.close();
    }
  });

  test("an error answer to a lookup (reservation-get) fails that lease too; result 2 (host_cmds gone) is the operator's", async () => {
    const s = await setup(await withLeases([A, B]), { hostCache: true });
    try {
      s.kea.answer('reservation-get', (a) => a.identifier === A.mac, { result: 1, text: "Unable to parse 'identifier' value." });
      assert.deepEqual(
        (await s.backend.write([lease(A), lease(B)])).map((r) => r.outcome),
        ['failed', 'created'],
      );
      s.kea.answer('reservation-get', () => true, { result: 2, text: "'reservation-get' command not supported." });
      const err = await s.backend.write([lease(A)]).then(
        () => assert.fail('the write succeeded'),
        (e: unknown) => e,
      );
      assert.equal(s.backend.classify(err), 'config');
    } finally {
      await s.close();
    }
  });

  test("Kea's hosts database unreachable is the batch's problem: it is retried, not failed", async () => {
    const s = await setup(await withLeases([A]));
    try {
      s.kea.answer('reservation-add', () => true, { result: 1, text: 'fatal database error or connectivity lost' });
      const err = await s.backend.write([lease(A)]).then(
        () => assert.fail('the write succeeded'),
        (e: unknown) => e,
      );
      assert.equal(s.backend.classify(err), 'transient');
      assert.equal(s.metrics.total(M.failed[0]), 0);
    } finally {
      await s.close();
    }
  });
});
