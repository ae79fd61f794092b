import assert from 'node:assert/strict';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DbOptions } from '../src/options';
import { connect, TestCluster, dbFlags, hostRows } from './helpers/pg';
import { CSV_HEADER, csvRow, fileStem, keaLfc, manyLeases, TestLease } from './helpers/leases';
import { queuePeakUntilReserved, startMonitor, tempDir, testOptions } from './helpers/monitor';
import { REPLAY_CHUNK } from '../src/sources/replay';
import { waitFor } from './helpers/wait';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

function leaseDir(): { dir: string; file: string } {
  const dir = tempDir('klm-leases-');
  return { dir, file: join(dir, 'kea-leases4.csv') };
}

/** Appends rows the way Kea does: one write per row, no fsync. */
class FakeKeaMemfile {
  private readonly fd: number;
  constructor(readonly file: string) {
    this.fd = openSync(file, 'a');
    if (readFileSync(file).length === 0) writeSync(this.fd, CSV_HEADER + '\n');
  }
  append(l: TestLease): void {
    writeSync(this.fd, csvRow(l));
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** Kea's lease file cleanup, step by step: rename to .1 and start a new file (then `lfc` merges). */
function rotate(file: string, rows: TestLease[] = []): void {
  renameSync(file, `${file}.1`);
  writeFileSync(file, CSV_HEADER + '\n' + rows.map(csvRow).join(''));
}

const lfc = (file: string): void => keaLfc(file);

/** Creates `file` holding `content` on inode `ino` if the filesystem hands that number out again (ext4 does). */
function createOnInode(file: string, content: string, ino: number): boolean {
  const tries: string[] = [];
  let hit = false;
  for (let i = 0; i < 2000 && !hit; i++) {
    const f = `${file}.try${i}`;
    writeFileSync(f, '');
    tries.push(f);
    hit = statSync(f).ino === ino;
  }
  if (hit) {
    const f = tries.pop() as string;
    writeFileSync(f, content);
    renameSync(f, file);
  } else {
    writeFileSync(file, content);
  }
  for (const f of tries) unlinkSync(f);
  return hit;
}

/** The monitor as its own process (tsx on the sources), so it can be SIGKILLed. */
function spawnMonitor(db: DbOptions, file: string, outputDir: string): ChildProcess {
  const args = [
    '--import',
    'tsx',
    join(__dirname, '..', 'src', 'main.ts'),
    'run',
    '--lease-file',
    file,
    '--output-dir',
    outputDir,
    ...dbFlags(db),
    '--log-format',
    'json',
  ];
  return spawn(process.execPath, args, { stdio: 'ignore', env: { PATH: process.env.PATH ?? '' } });
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

/** Points a saved position at another inode: what an inode number recycled by the filesystem does. */
function retargetPosition(state: string, from: number, to: number): void {
  const walk = (o: unknown): void => {
    if (!o || typeof o !== 'object') return;
    for (const [k, v] of Object.entries(o)) {
      if (k === 'ino' && v === from) (o as Record<string, unknown>)[k] = to;
      else walk(v);
    }
  };
  const pos = JSON.parse(readFileSync(state, 'utf8'));
  walk(pos);
  writeFileSync(state, JSON.stringify(pos));
}

const savedOffset = (state: string): number => (JSON.parse(readFileSync(state, 'utf8')) as { offset: number }).offset;

describe('file mode (Kea memfile CSV)', () => {
  test('replays .2, .1 and the file: renewals, deletes, reclaims, declines, expiries and escaped commas', async () => {
    const db = await cluster.freshDatabase();
    const { file } = leaseDir();
    const now = Math.floor(Date.now() / 1000);
    writeFileSync(
      `${file}.2`,
      CSV_HEADER +
        '\n' +
        [
          csvRow({ ip: '10.5.0.1', mac: '02:00:00:00:05:01', hostname: 'old-name' }),
          csvRow({ ip: '10.5.0.2', mac: '02:00:00:00:05:02', hostname: 'deleted-later' }),
        ].join(''),
    );
    writeFileSync(
      `${file}.1`,
      CSV_HEADER +
        '\n' +
        [
          csvRow({ ip: '10.5.0.1', mac: '02:00:00:00:05:01', hostname: 'rack-3,slot-7' }), // renewal with a new, escaped name
          csvRow({ ip: '10.5.0.2', mac: '02:00:00:00:05:02', validLifetime: 0 }), // deleted
          csvRow({ ip: '10.5.0.3', mac: '02:00:00:00:05:03', state: 1 }), // declined
        ].join(''),
    );
    writeFileSync(
      file,
      CSV_HEADER +
        '\n' +
        [
          csvRow({ ip: '10.5.0.4', mac: '02:00:00:00:05:04', hostname: 'bmc-4' }),
          csvRow({ ip: '10.5.0.4', mac: '02:00:00:00:05:04', state: 2, hostname: '' }), // reclaimed
          csvRow({ ip: '10.5.0.5', mac: '02:00:00:00:05:05', expire: now - 10 }), // expired while nobody watched
          csvRow({ ip: '10.5.0.6', mac: '02:00:00:00:05:06', hostname: 'live' }),
          csvRow({ ip: '10.5.0.7', mac: '02:00:00:00:05:07', subnet: 9 }),
        ].join(''),
    );
    const run = await startMonitor(testOptions(db, { leaseFile: file, subnetIds: [1] }));
    try {
      await waitFor('replay', async () => (await hostRows(db)).length === 2);
      const rows = await hostRows(db);
      assert.deepEqual(rows.map((r) => [r.mac, r.ip, r.hostname]).sort(), [
        ['02:00:00:00:05:01', '10.5.0.1', 'rack-3,slot-7'],
        ['02:00:00:00:05:06', '10.5.0.6', 'live'],
      ]);
      const rec = JSON.parse(readFileSync(join(run.options.outputDir, '02-00-00-00-05-01.json'), 'utf8'));
      assert.equal(rec.source, 'memfile');
      assert.equal(rec.hostname, 'rack-3,slot-7');
    } finally {
      await run.stop();
    }
  });

  test('survives lease file cleanups done exactly as Kea does them while rows are appended, losing none', async () => {
    const db = await cluster.freshDatabase();
    const { file } = leaseDir();
    writeFileSync(file, CSV_HEADER + '\n');
    const run = await startMonitor(testOptions(db, { leaseFile: file }));
    try {
      // Kea is another process: so is the writer here, at about 4,000 rows/s with a cleanup every 500 leases.
      const { stdout: out } = await promisify(execFile)(process.execPath, [
        '--import',
        'tsx',
        join(__dirname, 'fixtures', 'fake-kea-memfile.ts'),
        file,
        '3000',
        '1000',
        '500',
      ]);
      assert.equal(JSON.parse(out).rotations, 5);
      await waitFor('3,000 reservations', async () => (await hostRows(db)).length === 3000, 120_000, 200);
      const got = new Set((await hostRows(db)).map((r) => `${r.mac}=${r.ip}`));
      for (const l of manyLeases(3000, 1000)) assert.ok(got.has(`${l.mac}=${l.ip}`), `lost ${l.mac}`);
      // Cleanups were followed. Fewer than 5 switches is fine: generations merged away while the event loop
      // was busy are recovered from .2 in one read, and the leases above prove none was lost.
      assert.ok(run.monitor.metrics.value('kea_lease_monitor_lease_file_rotations_total') >= 1);
      assert.equal(run.monitor.metrics.total('kea_lease_monitor_input_rejected_total'), 0);
    } finally {
      await run.stop();
    }
  });

  test('--batch-linger: once leases pile up they share batches; a lone lease is written at once', async () => {
    const db = await cluster.freshDatabase();
    const { file } = leaseDir();
    const kea = new FakeKeaMemfile(file);
    // A linger far longer than the test's steps, so a wait for it cannot go unnoticed.
    const run = await startMonitor(testOptions(db, { leaseFile: file, batchLinger: 3000 }));
    const batches = (): number => run.monitor.metrics.value('kea_lease_monitor_batches_total');
    try {
      const leases = manyLeases(14, 7000);
      // One by one, 100 ms apart: each batch holds one lease, so none waits for the linger.
      const lonesFrom = performance.now();
      for (const [i, l] of leases.slice(0, 3).entries()) {
        kea.append(l);
        await waitFor(`lease ${i + 1}, alone`, async () => (await hostRows(db)).length === i + 1);
        await new Promise((r) => setTimeout(r, 100));
      }
      const lonesMs = performance.now() - lonesFrom;
      assert.ok(lonesMs < 2000, `three lone leases took ${Math.round(lonesMs)} ms: one waited for the linger`);
      assert.equal(batches(), 3);
      // Two in one write make a batch of two; the nine after it, 20 ms apart, fall inside its linger
      // and go together once it ends.
      kea.append(leases[3]);
      kea.append(leases[4]);
      await waitFor('five', async () => (await hostRows(db)).length === 5);
      for (const l of leases.slice(5)) {
        kea.append(l);
        await new Promise((r) => setTimeout(r, 20));
      }
      await waitFor('all fourteen', async () => (await hostRows(db)).length === 14);
      assert.ok(batches() <= 6, `14 leases in ${batches()} batches`);
    } finally {
      kea.close();
      await run.stop();
    }
  });

  test('remembers its position: a restart does not reprocess what it already handled', async () => {
    const db = await cluster.freshDatabase();
    const { file } = leaseDir();
    const kea = new FakeKeaMemfile(file);
    for (const l of manyLeases(200, 5000)) kea.append(l);
    const options = testOptions(db, { leaseFile: file });
    const first = await startMonitor(options);
    await waitFor('first 200', async () => (await hostRows(db)).length === 200);
    await first.stop();
    for (const l of manyLeases(30, 5200)) kea.append(l);
    const second = await startMonitor(options);
    try {
      await waitFor('230', async () => (await hostRows(db)).length === 230);
      assert.equal(second.monitor.metrics.value('kea_lease_monitor_leases_received_total', { source: 'memfile' }), 30);
      assert.ok(second.logs.some((l) => l.includes('Resuming the lease file from the saved position')));
    } finally {
      kea.close();
      await second.stop();
    }
  });

  test('SIGKILL, then cleanups while down recycle the saved inode: the restart skips no generation', async () => {
    const db = await cluster.freshDatabase();
    const { file } = leaseDir();
    const out = tempDir('klm-out-');
    const state = join(out, '.memfile-position.json');
    const [a, b, c, d] = [manyLeases(100, 20000), manyLeases(50, 20100), manyLeases(50, 20150), manyLeases(300, 20200)];
    writeFileSync(file, CSV_HEADER + '\n' + a.map(csvRow).join(''));
    const savedIno = statSync(file).ino;
    const first = spawnMonitor(db, file, out);
    try {
      await waitFor('the first 100', async () => (await hostRows(db)).length === 100, 30_000, 100);
      await waitFor('the position saved at the end of the file', () => savedOffset(state) === statSync(file).size);
    } finally {
      await kill9(first);
    }
    appendFileSync(file, b.map(csvRow).join('')); // after the last save: once merged, only .2 holds them
    rotate(file, c);
    lfc(file); // the saved generation is merged into .2 and unlinked: its inode number is free again
    renameSync(file, `${file}.1`);
    const reused = createOnInode(file, CSV_HEADER + '\n' + d.map(csvRow).join(''), savedIno);
    lfc(file);
    if (!reused) retargetPosition(state, savedIno, statSync(file).ino); // tmpfs does not recycle inode numbers
    assert.ok(statSync(file).size > savedOffset(state), 'the new file is longer than the saved offset');
    const second = spawnMonitor(db, file, out);
    try {
      await waitFor('the position at the end of the new file', () => savedOffset(state) === statSync(file).size, 30_000, 100);
      const got = new Set((await hostRows(db)).map((r) => `${r.mac}=${r.ip}`));
      const lost = [...a, ...b, ...c, ...d].filter((l) => !got.has(`${l.mac}=${l.ip}`));
      assert.equal(
        lost.length,
        0,
        `${lost.length} leases lost (inode ${reused ? 'recycled by the filesystem' : 'recycled by hand'}), e.g. ${lost
          .slice(0, 3)
          .map((l) => l.ip)
          .join(', ')}`,
      );
    } finally {
      await kill9(second);
    }
  });

  test('a restart whose saved generation is now .1 resumes there and then follows the current file', async () => {
    const db = await cluster.freshDatabase();
    const { file } = leaseDir();
    const [a, b, c, e] = [manyLeases(100, 30000), manyLeases(30, 30100), manyLeases(40, 30130), manyLeases(5, 30170)];
    writeFileSync(file, CSV_HEADER + '\n' + a.map(csvRow).join(''));
    const options = testOptions(db, { leaseFile: file });
    const first = await startMonitor(options);
    await waitFor('the first 100', async () => (await hostRows(db)).length === 100);
    await first.stop();
    appendFileSync(file, b.map(csvRow).join(''));
    rotate(file, c); // cleanup has begun, kea-lfc has not merged .1 yet
    const second = await startMonitor(options);
    try {
      await waitFor('170', async () => (await hostRows(db)).length === 170);
      assert.ok(
        second.logs.some((l) => l.includes('Resuming the lease file from the saved position') && l.includes('.csv.1')),
        'resumed in .1',
      );
      assert.equal(
        second.monitor.metrics.value('kea_lease_monitor_leases_received_total', { source: 'memfile' }),
        70,
        'only the rows after the position',
      );
      lfc(file);
      rotate(file, e);
      lfc(file);
      await waitFor('175: it still follows the current file', async () => (await hostRows(db)).length === 175);
    } finally {
      await second.stop();
    }
  });

  test('cleanups during a replay that waits on the database lose no generation', async () => {
    const db = await cluster.freshDatabase();
    const { file } = leaseDir();
    const [a, c, d] = [manyLeases(50, 40000), manyLeases(40, 40050), manyLeases(30, 40090)];
    writeFileSync(file, CSV_HEADER + '\n' + a.map(csvRow).join(''));
    const lock = await connect(db);
    await lock.query('BEGIN; LOCK TABLE hosts IN ACCESS EXCLUSIVE MODE');
    const started = startMonitor(testOptions(db, { leaseFile: file }));
    try {
      await waitFor(
        'the replay blocked on the locked table',
        async () =>
          (await cluster.sql(db.database, "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))
            .length > 0,
      );
      for (const rows of [c, d]) {
        rotate(file, rows);
        await new Promise((r) => setTimeout(r, 100)); // kea-lfc runs about 100 ms after the rename
        lfc(file);
      }
    } finally {
      await lock.query('ROLLBACK');
      await lock.end();
    }
    const run = await started;
    try {
      await waitFor('120 reservations', async () => (await hostRows(db)).length === 120);
    } finally {
      await run.stop();
    }
  });

  test('generations created and merged away while the monitor could not look are read again from .2', async () => {
    const db = await cluster.freshDatabase();
    const { file } = leaseDir();
    const [a, b, c] = [manyLeases(20, 50000), manyLeases(30, 50020), manyLeases(10, 50050)];
    writeFileSync(file, CSV_HEADER + '\n' + a.map(csvRow).join(''));
    const run = await startMonitor(testOptions(db, { leaseFile: file }));
    try {
      await waitFor('the first 20', async () => (await hostRows(db)).length === 20);
      // Two whole cleanups without yielding: the monitor's event loop cannot pin the middle generation.
      rotate(file, b);
      lfc(file);
      rotate(file, c);
      lfc(file);
      await waitFor('60: the merged-away generation too', async () => (await hostRows(db)).length === 60);
      assert.ok(run.logs.some((l) => l.includes('reading the merge again')));
    } finally {
      await run.stop();
    }
  });

  test('a cold replay submits in bounded chunks, not one put per lease at once', async () => {
    const db = await cluster.freshDatabase();
    const { file } = leaseDir();
    const n = 3 * REPLAY_CHUNK;
    writeFileSync(file, CSV_HEADER + '\n' + manyLeases(n, 60000).map(csvRow).join(''));
    const most = await queuePeakUntilReserved(testOptions(db, { leaseFile: file, queueSize: 100_000, batchSize: 500 }), n);
    assert.ok(most > 0, 'the queue saw the replay');
    assert.ok(most <= 2 * REPLAY_CHUNK, `at most two chunks queued at once, saw ${most}`);
  });

  test('a partial last row waits for its newline', async () => {
    const db = await cluster.freshDatabase();
    const { file } = leaseDir();
    writeFileSync(file, CSV_HEADER + '\n');
    const run = await startMonitor(testOptions(db, { leaseFile: file }));
    try {
      const row = csvRow({ ip: '10.6.0.1', mac: '02:00:00:00:06:01', hostname: 'half' });
      appendFileSync(file, row.slice(0, 20));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await hostRows(db)).length, 0);
      appendFileSync(file, row.slice(20));
      await waitFor('the completed row', async () => (await hostRows(db)).length === 1);
      assert.equal(run.monitor.metrics.total('kea_lease_monitor_input_rejected_total'), 0);
    } finally {
      await run.stop();
    }
  });

  test('100 malformed rows are logged and counted; hostile hostnames are handled; good rows around them land', async () => {
    const db = await cluster.freshDatabase();
    const { file } = leaseDir();
    const good = manyLeases(100, 7000);
    const parts: Buffer[] = [Buffer.from(CSV_HEADER + '\n')];
    const garbage = [
      'garbage',
      '10.0.0.1,aa:bb',
      '999.1.1.1,02:00:00:00:00:01,,3600,1900000000,1,0,0,x,0,',
      '10.0.0.1,zz:zz:zz:zz:zz:zz,,3600,1900000000,1,0,0,x,0,',
      '10.0.0.1,02:00:00:00:00:01,,NaN,1900000000,1,0,0,x,0,',
    ];
    for (let i = 0; i < 100; i++) {
      parts.push(Buffer.from(csvRow(good[i])));
      parts.push(Buffer.from(garbage[i % garbage.length] + '\n'));
    }
    // Hostile hostnames: NUL, invalid UTF-8, shell and path characters, 10 kB.
    const row = (ip: string, mac: string, host: Buffer): Buffer =>
      Buffer.concat([Buffer.from(`${ip},${mac},,3600,${Math.floor(Date.now() / 1000) + 3600},1,0,0,`), host, Buffer.from(',0,\n')]);
    parts.push(row('10.7.0.1', '02:00:00:00:07:01', Buffer.from([0x61, 0x00, 0x62, 0xff, 0xfe, 0x63])));
    parts.push(row('10.7.0.2', '02:00:00:00:07:02', Buffer.from('$(reboot);`id`|../../../etc/passwd')));
    parts.push(row('10.7.0.3', '02:00:00:00:07:03', Buffer.from('x'.repeat(10_240))));
    writeFileSync(file, Buffer.concat(parts));
    const run = await startMonitor(testOptions(db, { leaseFile: file }));
    try {
      await waitFor('good rows', async () => (await hostRows(db)).length === 103);
      assert.equal(run.monitor.metrics.value('kea_lease_monitor_input_rejected_total', { source: 'memfile', reason: 'invalid-row' }), 100);
      assert.equal(run.logs.filter((l) => l.includes('Malformed lease file row skipped')).length, 100);
      const byMac = new Map((await hostRows(db)).map((r) => [r.mac, r.hostname]));
      assert.equal(byMac.get('02:00:00:00:07:01'), 'ab\ufffd\ufffdc');
      assert.equal(byMac.get('02:00:00:00:07:02'), '$(reboot);`id`|../../../etc/passwd');
      assert.equal(byMac.get('02:00:00:00:07:03'), 'x'.repeat(255));
      await waitFor('records', () => existsSync(join(run.options.outputDir, `${fileStem('02:00:00:00:07:02')}.json`)));
    } finally {
      await run.stop();
    }
  });

  test('falls back to polling where the directory cannot be watched, and picks the file up once it exists', async () => {
    const db = await cluster.freshDatabase();
    const dir = join(tempDir('klm-late-'), 'not-yet');
    const file = join(dir, 'kea-leases4.csv');
    const run = await startMonitor(testOptions(db, { leaseFile: file, pollInterval: 0.1 }));
    try {
      assert.ok(run.logs.some((l) => l.includes('Cannot watch the lease directory; polling instead')));
      mkdirSync(dir);
      writeFileSync(file, CSV_HEADER + '\n' + csvRow({ ip: '10.8.0.1', mac: '02:00:00:00:08:01' }));
      await waitFor('the late file', async () => (await hostRows(db)).length === 1);
    } finally {
      await run.stop();
    }
  });
});
