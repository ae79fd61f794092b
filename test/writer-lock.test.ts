// A transaction holding the writers' lock is rolled back on any error, the lock itself included: a
// lock_timeout must not send a connection back to the pool inside an aborted transaction.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { WRITER_LOCK, writeReservations } from '../src/db/reservations';
import { withWriterLock } from '../src/db/writer-lock';
import { deleteOwned } from '../src/lifecycle/owned';
import { connect, TestCluster } from './helpers/pg';

let cluster: TestCluster;
before(() => (cluster = TestCluster.start()));
after(() => cluster.stop());

test('a lock_timeout while taking the writers lock leaves no aborted transaction in the pool; the next batch succeeds', async () => {
  const db = await cluster.freshDatabase();
  // One connection, so the next checkout is the very connection the failed pass used.
  const pool = new pg.Pool({ ...db, max: 1, options: '-c lock_timeout=200' });
  const holder = await connect(db);
  try {
    await holder.query('SELECT pg_advisory_lock($1)', [WRITER_LOCK]);
    for (const pass of [
      (c: pg.PoolClient) => deleteOwned(c, [1], false),
      (c: pg.PoolClient) => withWriterLock(c, () => Promise.resolve('never reached')),
    ]) {
      const c = await pool.connect();
      try {
        await assert.rejects(pass(c), (err: { code?: string }) => err.code === '55P03');
      } finally {
        c.release();
      }
    }
    await holder.query('SELECT pg_advisory_unlock($1)', [WRITER_LOCK]);

    const c = await pool.connect();
    try {
      const [r] = await writeReservations(c, 'upsert', [
        { address: 0x0a020001, hwaddr: Buffer.from([2, 2, 0, 0, 0, 1]), subnetId: 1, hostname: 'next', source: 'memfile' },
      ]);
      assert.equal(r.outcome, 'created');
    } finally {
      c.release();
    }
  } finally {
    await holder.end();
    await pool.end();
  }
});
