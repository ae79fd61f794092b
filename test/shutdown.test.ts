import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { migrate } from '../src/db/migrate';
import { connect, TestCluster } from './helpers/pg';
import { startMonitor, testOptions } from './helpers/monitor';

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
  await new Promise((r) => setTimeout(r, 500));
  await run.stop();
  await new Promise((r) => setImmediate(r));
  assert.equal(timers(), baseline, `timers still armed after stop: ${process.getActiveResourcesInfo().join(', ')}`);
});
