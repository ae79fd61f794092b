import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { migrate } from '../src/db/migrate';
import type { DbOptions } from '../src/options';
import { CSV_HEADER, csvRow, fileStem, insertLeases, manyLeases, reservations, TestLease } from './helpers/leases';
import { startMonitor, tempDir, testOptions } from './helpers/monitor';
import { connect, TestCluster, dbFlags } from './helpers/pg';
import { SmallTmpfs } from './helpers/tmpfs';
import { waitFor } from './helpers/wait';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

const ROOT = join(__dirname, '..');

function leaseFile(leases: TestLease[]): string {
  const file = join(tempDir('klm-leases-'), 'kea-leases4.csv');
  writeFileSync(file, CSV_HEADER + '\n' + leases.map(csvRow).join(''));
  return file;
}

const hasRecord = (dir: string, l: TestLease): boolean => existsSync(join(dir, `${fileStem(l.mac)}.json`));
const tmpFiles = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.tmp')) : []);

async function reserved(db: DbOptions, l: TestLease): Promise<boolean> {
  const c = await connect(db);
  try {
    return (await reservations(c)).some((r) => r.mac === l.mac && r.ip === l.ip);
  } finally {
    await c.end();
  }
}

describe('discovery records are never lost', () => {
  test('file mode, output on a full disk: records wait (no .tmp left), the position does not pass them, and they are written once space is back', async () => {
    const fs = SmallTmpfs.mount(1024);
    try {
      const db = await cluster.freshDatabase();
      const out = join(fs.dir, 'discovery');
      const [l0, l1, l2] = manyLeases(3, 600);
      const file = leaseFile([l0]);
      // The position lives elsewhere: this test is about the records.
      const options = testOptions(db, { leaseFile: file, outputDir: out, stateFile: join(tempDir('klm-state-'), 'position.json') });
      let run = await startMonitor(options);
      try {
        await waitFor('the first record', () => hasRecord(out, l0));

        // While running: full, then freed.
        fs.fill();
        appendFileSync(file, csvRow(l1));
        await waitFor('the reservation', () => reserved(db, l1));
        await waitFor('the failure logged', () =>
          run.logs.some((l) => l.includes('Cannot write discovery records') && l.includes('ENOSPC')),
        );
        assert.equal(hasRecord(out, l1), false);
        assert.deepEqual(tmpFiles(out), [], 'no temp file left behind');
        assert.ok(run.monitor.metrics.value('kea_lease_monitor_discovery_backlog') >= 1);
        assert.ok(
          run.monitor.metrics.health.readiness().reasons.includes('records: cannot write discovery records (ENOSPC)'),
          '/readyz says why',
        );
        fs.free();
        await waitFor('the record once space is back', () => hasRecord(out, l1), 10_000);
        assert.ok(run.logs.some((l) => l.includes('Writing discovery records again')));
        assert.equal(run.monitor.metrics.health.readiness().ready, true, 'ready again');

        // Full again, and the monitor stops before space comes back: the lease was not handled,
        // so the next start reads it again and writes its record.
        fs.fill();
        appendFileSync(file, csvRow(l2));
        await waitFor('the reservation', () => reserved(db, l2));
        await waitFor('the record pending', () => run.monitor.metrics.value('kea_lease_monitor_discovery_backlog') >= 1);
        await run.stop();
        assert.deepEqual(tmpFiles(out), []);
        fs.free();
        run = await startMonitor(options);
        await waitFor('the record after a restart', () => hasRecord(out, l2), 15_000);
      } finally {
        await run.stop();
      }
    } finally {
      fs.unmount();
    }
  });

  test('a removed output directory is made again and the record written', async () => {
    const db = await cluster.freshDatabase();
    const [l0, l1] = manyLeases(2, 700);
    const file = leaseFile([l0]);
    const out = join(tempDir('klm-out-'), 'discovery');
    const run = await startMonitor(
      testOptions(db, { leaseFile: file, outputDir: out, stateFile: join(tempDir('klm-state-'), 'position.json') }),
    );
    try {
      await waitFor('the first record', () => hasRecord(out, l0));
      rmSync(out, { recursive: true });
      appendFileSync(file, csvRow(l1));
      await waitFor('the record in the recreated directory', () => hasRecord(out, l1));
    } finally {
      await run.stop();
    }
  });

  test('database mode: past --record-backlog records waiting for the disk, the writer takes no new batch; all are written once it is back', async () => {
    const fs = SmallTmpfs.mount(1024);
    try {
      const db = await cluster.freshDatabase();
      const c = await connect(db);
      await migrate(c, { notify: true, dryRun: false });
      const out = join(fs.dir, 'discovery');
      const run = await startMonitor(
        testOptions(db, { useDatabaseEvents: true, outputDir: out, recordBacklog: 5, batchSize: 5, queueSize: 50 }),
      );
      try {
        fs.readOnly(true);
        const leases = manyLeases(40, 900);
        await insertLeases(c, leases);
        await waitFor('the record writes failing', () => run.logs.some((l) => l.includes('Cannot write discovery records')));
        await new Promise((resolve) => setTimeout(resolve, 1500));
        const held = (await reservations(c)).length;
        // One batch may start below the cap and end above it: at most backlog + batch - 1.
        assert.ok(held >= 5 && held <= 9, `${held} reserved while 5 records may wait`);
        fs.readOnly(false);
        await waitFor('every reservation', async () => (await reservations(c)).length === 40, 30_000);
        await waitFor('every record', () => leases.every((l) => hasRecord(out, l)), 30_000);
      } finally {
        await run.stop();
        await c.end();
      }
    } finally {
      fs.unmount();
    }
  });

  test('database mode: SIGKILL after COMMIT and before the record; the next start writes the record', async () => {
    const fs = SmallTmpfs.mount(1024);
    const db = await cluster.freshDatabase();
    const c = await connect(db);
    await migrate(c, { notify: true, dryRun: false });
    const out = join(fs.dir, 'discovery');
    const args = [
      '--import',
      'tsx',
      join(ROOT, 'src', 'main.ts'),
      '--use-database-events',
      ...dbFlags(db),
      '--output-dir',
      out,
      '--log-format',
      'json',
      '--reconnect-max-delay',
      '0.5',
    ];
    const start = () => {
      const child = spawn(process.execPath, args, {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NODE_OPTIONS: '' },
      });
      let text = '';
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      return { child, log: () => text };
    };
    let m = start();
    try {
      const [l0, l1] = manyLeases(2, 800);
      await waitFor('listening', () => m.log().includes('Listening for database lease events'), 30_000);
      await insertLeases(c, [l0]);
      await waitFor('the first record', () => hasRecord(out, l0));

      fs.readOnly(true);
      await insertLeases(c, [l1]);
      await waitFor('the reservation committed', () => reserved(db, l1));
      await waitFor('the record write failing', () => m.log().includes('Cannot write discovery records'));
      m.child.kill('SIGKILL');
      await new Promise((resolve) => m.child.once('exit', resolve));
      fs.readOnly(false);
      assert.equal(hasRecord(out, l1), false);

      m = start();
      await waitFor('the record written after the restart', () => hasRecord(out, l1), 30_000);
      // The pass logs after its queue drains, which can be just after the record lands.
      await waitFor('the catch-up counting the missing record', () => /"records_missing":1\b/.test(m.log()));
    } finally {
      m.child.kill('SIGKILL');
      await c.end();
      fs.unmount();
    }
  });
});
