import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { migrate } from '../src/db/migrate';
import { connect, TestCluster } from './helpers/pg';
import { startMonitor, testOptions } from './helpers/monitor';
import { waitFor } from './helpers/wait';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('database mode: stop() leaves no timer behind (the heartbeat timeout included)', async () => {
  const db = await cluster.freshDatabase();
  const c = await connect(db);
  await migrate(c, { notify: true, dryRun: false });
  await c.end();
  const baseline = timers();
  // Heartbeats every 50 ms: each one arms a timeout of at least 5 s around its query.
  const run = await startMonitor(testOptions(db, { useDatabaseEvents: true, heartbeatInterval: 0.05 }));
  // The sentinel: three heartbeat checks seen by PostgreSQL on the listener's backend (three query starts).
  const watcher = await connect(db);
  const starts = new Set<string>();
  try {
    await waitFor(
      'three heartbeats',
      async () => {
        const { rows } = await watcher.query<{ t: string }>(
          "SELECT query_start::text AS t FROM pg_stat_activity WHERE query LIKE '%pg_listening_channels()%' AND pid <> pg_backend_pid()",
        );
        for (const r of rows) starts.add(r.t);
        return starts.size >= 3;
      },
      10_000,
      5,
    );
  } finally {
    await watcher.end();
    await run.stop();
  }
  await new Promise((r) => setImmediate(r));
  assert.equal(timers(), baseline, `timers still armed after stop: ${process.getActiveResourcesInfo().join(', ')}`);
});
