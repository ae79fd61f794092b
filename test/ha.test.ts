import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { writeReservations } from '../src/db/reservations';
import { deleteOwned, listOwned } from '../src/lifecycle/owned';
import { haLockKey, Leadership } from '../src/ha/leadership';
import type { Lease } from '../src/lease';
import type { DbOptions } from '../src/options';
import { memoryLogger } from './helpers/monitor';
import { connect, TestCluster } from './helpers/pg';
import { waitFor } from './helpers/wait';
import { FencedError, FenceToken } from '../src/domain/fence';

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
    const guard = a.l.token();
    assert.ok(guard);
    const written = await writeReservations(c, 'upsert', [lease(1)], NO_CAP, { fence: guard });
    assert.equal(written[0].outcome, 'created');

    // The server ends a's lock session: b takes over, and a's old guard must no longer let anything through.
    const held = await c.query(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND objsubid = 2 AND granted`, [
      a.l.key,
    ]);
    assert.equal(held.rowCount, 1);
    await c.query('SELECT pg_terminate_backend($1)', [held.rows[0].pid]);
    await waitFor('b active', () => b.l.active, 10_000);
    await waitFor('a stepped down', () => a.events.includes('lost'), 10_000);
    assert.equal(a.l.token(), null);
    await assert.rejects(writeReservations(c, 'upsert', [lease(2)], NO_CAP, { fence: guard }), FencedError);
    const { rows } = await c.query('SELECT count(*)::int AS n FROM hosts');
    assert.equal(rows[0].n, 1, 'the fenced batch wrote nothing');
    const ok = await writeReservations(c, 'upsert', [lease(3)], NO_CAP, { fence: b.l.token()! });
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

test('the fence names a session, not a pid: the same pid with another backend_start is refused, and so is a fenced prune', async () => {
  const db = await cluster.freshDatabase();
  const a = member(db);
  await waitFor('a active', () => a.l.active, 10_000);
  const c = await connect(db);
  try {
    const token = a.l.token()!;
    assert.match(token.backendStart, /^[0-9]+$/);
    // What a reused pid looks like to the fence: the pid holds the lock, but it is a later session.
    const reused: FenceToken = { ...token, backendStart: String(BigInt(token.backendStart) - 1n) };
    await assert.rejects(writeReservations(c, 'upsert', [lease(10)], NO_CAP, { fence: reused }), FencedError);
    const written = await writeReservations(c, 'upsert', [lease(11)], NO_CAP, { fence: token });
    assert.equal(written[0].outcome, 'created');

    // The daemon's prune deletes through the same fence.
    const ids = (await listOwned(c)).map((r) => r.host_id);
    assert.equal(ids.length, 1);
    let fenced = 0;
    const stale = { token: () => reused, fenced: () => void fenced++ };
    await assert.rejects(deleteOwned(c, ids, false, stale), FencedError);
    assert.equal(fenced, 1, 'the fence is told it was found closed');
    await assert.rejects(deleteOwned(c, ids, false, { token: () => null, fenced: () => undefined }), FencedError);
    assert.equal((await listOwned(c)).length, 1, 'a fenced prune deletes nothing');
    const removed = await deleteOwned(c, ids, false, { token: () => a.l.token(), fenced: () => undefined });
    assert.deepEqual(
      removed.map((r) => r.host_id),
      ids,
    );
    // The client is usable after the fenced transactions (each was rolled back).
    assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
  } finally {
    await c.end();
    await a.l.stop();
  }
});
