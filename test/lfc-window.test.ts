import assert from 'node:assert/strict';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readMemfileStore } from '../src/lifecycle/lease-store';
import { TestCluster, hostRows } from './helpers/pg';
import { CSV_HEADER, csvRow, keaLfc, manyLeases } from './helpers/leases';
import { startMonitor, tempDir, testOptions } from './helpers/monitor';
import { waitFor } from './helpers/wait';

// kea-lfc (src/bin/lfc/lfc_controller.cc) merges .2 and .1 into .output, renames it to .completed,
// then removes .2, removes .1 and renames .completed to .2. Between the removals and the rename only
// .completed holds the merged generations; a kea-lfc killed there leaves it so until its next run.
let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

/** Lease files as kea-lfc leaves them inside its rotation window: `.completed` and the current file. */
function inTheWindow(merged: number, current: number): { file: string; total: number } {
  const file = join(tempDir('klm-lfc-'), 'kea-leases4.csv');
  writeFileSync(`${file}.1`, CSV_HEADER + '\n' + manyLeases(merged, 60000).map(csvRow).join(''));
  writeFileSync(
    file,
    CSV_HEADER +
      '\n' +
      manyLeases(current, 60000 + merged)
        .map(csvRow)
        .join(''),
  );
  keaLfc(file, false, true);
  assert.ok(existsSync(`${file}.completed`) && !existsSync(`${file}.1`) && !existsSync(`${file}.2`));
  return { file, total: merged + current };
}

describe("kea-lfc's rotation window (only .completed holds the merged rows)", () => {
  test('a replay started inside the window reserves the merged leases too', async () => {
    const db = await cluster.freshDatabase();
    const { file, total } = inTheWindow(25, 5);
    const run = await startMonitor(testOptions(db, { leaseFile: file }));
    try {
      await waitFor(`${total} reservations`, async () => (await hostRows(db)).length === total);
    } finally {
      await run.stop();
    }
  });

  test('the lease store that plan, list and prune read sees the merged leases inside the window', async () => {
    const { file, total } = inTheWindow(25, 5);
    const store = await readMemfileStore(file);
    assert.equal(store.latest.length, total);
    assert.equal([...store.devices.values()].filter((d) => d.live).length, total);
  });

  test('generations merged away while the monitor could not look are read from .completed inside the window', async () => {
    const db = await cluster.freshDatabase();
    const file = join(tempDir('klm-lfc-'), 'kea-leases4.csv');
    const [a, b, c] = [manyLeases(20, 61000), manyLeases(30, 61020), manyLeases(10, 61050)];
    writeFileSync(file, CSV_HEADER + '\n' + a.map(csvRow).join(''));
    // Kea's lfcExecute(): the current file becomes .1 and a new one starts.
    const rotate = (rows: typeof a): void => {
      renameSync(file, `${file}.1`);
      writeFileSync(file, CSV_HEADER + '\n' + rows.map(csvRow).join(''));
    };
    const run = await startMonitor(testOptions(db, { leaseFile: file }));
    try {
      await waitFor('the first 20', async () => (await hostRows(db)).length === 20);
      // Two whole cleanups without yielding, the second stopped inside kea-lfc's window.
      rotate(b);
      keaLfc(file);
      rotate(c);
      keaLfc(file, false, true);
      await waitFor('60: the merged-away generation too', async () => (await hostRows(db)).length === 60);
      assert.ok(run.logs.some((l) => l.includes('reading the merge again') && l.includes('.completed')));
    } finally {
      await run.stop();
    }
  });
});
