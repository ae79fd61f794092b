// The record writer runs off the commit path: records queue, are written between event-loop turns,
// keep per-device order, and hold the writer back (whenRoom) past their limit.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DiscoveryWriter, RecordedResult } from '../src/discovery';
import { parseHwaddr, parseIPv4 } from '../src/lease';
import { Metrics } from '../src/metrics';
import { RecordWriter } from '../src/pipeline/records';
import { memoryLogger, tempDir } from './helpers/monitor';

function result(mac: string, ip: string, outcome: RecordedResult['outcome'] = 'created'): RecordedResult {
  return {
    lease: { address: parseIPv4(ip), hwaddr: parseHwaddr(mac), subnetId: 1, hostname: null, source: 'memfile' },
    outcome,
    hostId: 1,
  };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function writer(limit: number, reservationsWaiting?: () => boolean): { records: RecordWriter; dir: string } {
  const dir = tempDir('klm-records-');
  const discovery = new DiscoveryWriter(dir);
  discovery.prepare();
  return { records: new RecordWriter(discovery, 1000, limit, memoryLogger().logger, new Metrics(), reservationsWaiting), dir };
}

const jsonFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('record writer', () => {
  test('submit returns before the file exists; the waiter runs once it is renamed into place', async () => {
    const { records, dir } = writer(100);
    let handled = false;
    records.submit(result('0c:c4:7a:00:00:01', '10.0.0.1'), [() => (handled = true)]);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.json')),
      [],
      'nothing written inside submit',
    );
    assert.equal(handled, false);
    for (let i = 0; i < 10 && !handled; i++) await turn();
    assert.equal(handled, true);
    assert.deepEqual(readdirSync(dir), ['0c-c4-7a-00-00-01.json']);
    records.stop();
  });

  test('two results for one device before it is written: the newer is on disk and both waiters run', async () => {
    const { records, dir } = writer(100);
    const done: string[] = [];
    records.submit(result('0c:c4:7a:00:00:02', '10.0.0.2'), [() => done.push('first')]);
    records.submit(result('0c:c4:7a:00:00:02', '10.0.0.3', 'updated'), [() => done.push('second')]);
    assert.equal(records.backlog, 1, 'one pending record per device');
    for (let i = 0; i < 10 && done.length < 2; i++) await turn();
    assert.deepEqual(done, ['first', 'second']);
    const rec = JSON.parse(readFileSync(join(dir, '0c-c4-7a-00-00-02.json'), 'utf8')) as { ip: string; reservation: string };
    assert.equal(rec.ip, '10.0.0.3');
    assert.equal(rec.reservation, 'updated');
    records.stop();
  });

  test('past its limit the backlog holds the writer back until it drains', async () => {
    const { records } = writer(50);
    assert.equal(records.whenRoom(), null, 'room while empty');
    for (let i = 0; i < 200; i++) records.submit(result(`0c:c4:7a:00:01:${(i % 256).toString(16).padStart(2, '0')}`, '10.0.1.1'), []);
    const room = records.whenRoom();
    assert.ok(room, 'a full backlog makes the writer wait');
    let freed = false;
    void room.then(() => (freed = true));
    await turn();
    for (let i = 0; i < 200 && records.backlog >= 50; i++) await turn();
    await turn();
    assert.equal(freed, true, 'released once under the limit');
    assert.ok(records.backlog < 50);
    assert.equal(records.stop(), 0, 'stop writes what is left');
  });

  test('while reservations wait (a burst) records wait too, until they have gone', async () => {
    let burst = true;
    const { records, dir } = writer(100, () => burst);
    for (let i = 0; i < 20; i++) records.submit(result(`0c:c4:7a:00:02:${i.toString(16).padStart(2, '0')}`, '10.0.2.1'), []);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(jsonFiles(dir), [], 'no record written while a full batch waits');
    burst = false;
    for (let i = 0; i < 50 && records.backlog > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(jsonFiles(dir).length, 20, 'all written once the reservations have gone');
    records.stop();
  });

  test('a burst does not hold back a full backlog: past its limit records are written anyway', async () => {
    const { records, dir } = writer(10, () => true);
    try {
      for (let i = 0; i < 30; i++) records.submit(result(`0c:c4:7a:00:03:${i.toString(16).padStart(2, '0')}`, '10.0.3.1'), []);
      for (let i = 0; i < 50 && records.backlog >= 10; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(records.backlog < 10, `drained under the limit (backlog ${records.backlog})`);
      assert.ok(jsonFiles(dir).length >= 21);
    } finally {
      assert.equal(records.stop(), 0, 'stop writes the rest');
    }
    assert.equal(jsonFiles(dir).length, 30);
  });
});
