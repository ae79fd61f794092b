import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FencedError, writeReservations } from '../src/db/reservations';
import { haLockKey, Leadership } from '../src/ha/leadership';
import type { Lease } from '../src/lease';
import type { DbOptions } from '../src/options';
import { memoryLogger } from './helpers/monitor';
import { connect, TestCluster } from './helpers/pg';
import { waitFor } from './helpers/wait';

let cluster: TestCluster;
before(() => (cluster = TestCluster.start()));
after(() => cluster.stop());

const lease = (n: number): Lease => ({
  address: 0x0a000000 + n,
  hwaddr: Buffer.from([2, 0, 0, 0, 0, n]),
  subnetId: 1,
  hostname: `h${n}`,
  source: 'memfile',
});
const NO_CAP = { maxPerSubnet: null };

function member(db: DbOptions, group = 'g'): { l: Leadership; events: string[] } {
  const events: string[] = [];
  const l = new Leadership({ db, group, intervalMs: 200 }, memoryLogger().logger);
  l.onChange((e) => events.push(e));
  l.start();
  return { l, events };
}

test('the lock key is stable, positive, and differs by group', () => {
  assert.equal(haLockKey('a'), haLockKey('a'));
  assert.notEqual(haLockKey('a'), haLockKey('b'));
  for (const g of ['a', 'pair-1', 'é']) assert.ok(haLockKey(g) > 0 && haLockKey(g) < 2 ** 31);
});

test('two members: exactly one is active; killing its lock session hands over and fences the old guard', async () => {
  const db = await cluster.freshDatabase();
  const a = member(db);
  await waitFor('a active', () => a.l.active, 10_000);
  const b = member(db);
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(b.l.active, false, 'the second member stands by while the first holds the lock');

  const c = await connect(db);
  try {
    const guard = a.l.guard();
    assert.ok(guard);
    const written = await writeReservations(c, 'upsert', [lease(1)], NO_CAP, guard);
    assert.equal(written[0].outcome, 'created');

    // The server ends a's lock session: b takes over, and a's old guard must no longer let anything through.
    const held = await c.query(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND objsubid = 2 AND granted`, [
      a.l.key,
    ]);
    assert.equal(held.rowCount, 1);
    await c.query('SELECT pg_terminate_backend($1)', [held.rows[0].pid]);
    await waitFor('b active', () => b.l.active, 10_000);
    await waitFor('a stepped down', () => a.events.includes('lost'), 10_000);
    assert.equal(a.l.guard(), null);
    await assert.rejects(writeReservations(c, 'upsert', [lease(2)], NO_CAP, guard), FencedError);
    const { rows } = await c.query('SELECT count(*)::int AS n FROM hosts');
    assert.equal(rows[0].n, 1, 'the fenced batch wrote nothing');
    const ok = await writeReservations(c, 'upsert', [lease(3)], NO_CAP, b.l.guard()!);
    assert.equal(ok[0].outcome, 'created');
    await waitFor('a contends again and stays standby', () => a.events.length === 2 && !a.l.active, 5000);
  } finally {
    await c.end();
    await a.l.stop();
    await b.l.stop();
  }
});

test('stop() releases the lock for the other member', async () => {
  const db = await cluster.freshDatabase();
  const a = member(db);
  await waitFor('a active', () => a.l.active, 10_000);
  const b = member(db);
  await a.l.stop();
  await waitFor('b active after a stopped', () => b.l.active, 10_000);
  await b.l.stop();
});
