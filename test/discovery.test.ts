import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DiscoveryWriter } from '../src/discovery';
import { FatalError } from '../src/errors';
import { parseHwaddr, parseIPv4 } from '../src/lease';
import { tempDir } from './helpers/monitor';

const lease = (ip: string, hostname: string | null = 'bmc') => ({
  address: parseIPv4(ip),
  hwaddr: parseHwaddr('0c:c4:7a:00:00:01'),
  subnetId: 3,
  hostname,
  source: 'memfile' as const,
});

describe('discovery records', () => {
  test('one file per MAC, written atomically, first_seen kept across writers', () => {
    const dir = join(tempDir('klm-disc-'), 'nested', 'discovery');
    const w = new DiscoveryWriter(dir);
    w.prepare();
    const path = w.write({ lease: lease('10.0.0.1'), outcome: 'created', hostId: 7 }, new Date('2026-01-01T00:00:00Z'));
    assert.equal(path, join(dir, '0c-c4-7a-00-00-01.json'));
    // A new process (no memory of the first) still keeps first_seen from the file.
    const w2 = new DiscoveryWriter(dir);
    w2.prepare();
    w2.write({ lease: lease('10.0.0.2', null), outcome: 'updated', hostId: 7 }, new Date('2026-02-01T00:00:00Z'));
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), {
      // No hostname in the lease: the reservation keeps its name (COALESCE), and so does the record.
      mac: '0c:c4:7a:00:00:01',
      ip: '10.0.0.2',
      hostname: 'bmc',
      subnet_id: 3,
      first_seen: '2026-01-01T00:00:00.000Z',
      last_seen: '2026-02-01T00:00:00.000Z',
      source: 'memfile',
      reservation: 'updated',
      host_id: 7,
    });
    assert.deepEqual(readdirSync(dir), ['0c-c4-7a-00-00-01.json'], 'no temp files are left behind');
  });

  test('a lease without a hostname keeps the name the reservation holds; a new name replaces it', () => {
    const dir = tempDir('klm-disc-');
    const w = new DiscoveryWriter(dir);
    w.prepare();
    const path = w.write({ lease: lease('10.0.0.1', 'node-a'), outcome: 'created', hostId: 1 });
    w.write({ lease: lease('10.0.0.1', null), outcome: 'unchanged', hostId: 1 });
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).hostname, 'node-a');
    w.write({ lease: lease('10.0.0.1', 'node-b'), outcome: 'updated', hostId: 1 });
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).hostname, 'node-b');
  });

  test('a damaged record is replaced, not trusted', () => {
    const dir = tempDir('klm-disc-');
    writeFileSync(join(dir, '0c-c4-7a-00-00-01.json'), '{"first_seen": "not a date"');
    const w = new DiscoveryWriter(dir);
    w.prepare();
    w.write({ lease: lease('10.0.0.1'), outcome: 'conflict', hostId: 9 }, new Date('2026-03-01T00:00:00Z'));
    const rec = JSON.parse(readFileSync(join(dir, '0c-c4-7a-00-00-01.json'), 'utf8'));
    assert.equal(rec.first_seen, '2026-03-01T00:00:00.000Z');
    assert.equal(rec.reservation, 'conflict');
  });

  test('an output directory that cannot be created or written fails clearly', () => {
    const file = join(tempDir('klm-disc-'), 'a-file');
    writeFileSync(file, '');
    assert.throws(
      () => new DiscoveryWriter(join(file, 'discovery')).prepare(),
      (err: unknown) => err instanceof FatalError && /output directory .*a-file\/discovery is not writable \(ENOTDIR\)/.test(err.message),
    );
  });
  test('recordStems lists the stems of the .json records, more than one read of the directory deep, and nothing else', () => {
    const dir = tempDir('klm-disc-');
    const w = new DiscoveryWriter(dir);
    w.prepare();
    // More entries than one read of the directory returns (STEMS_BUFFER).
    const stems = Array.from(
      { length: 2500 },
      (_, i) => `02-aa-00-00-${(i >> 8).toString(16).padStart(2, '0')}-${(i & 255).toString(16).padStart(2, '0')}`,
    );
    for (const s of stems) writeFileSync(join(dir, `${s}.json`), '{}');
    writeFileSync(join(dir, '.02-aa-00-00-00-00.json.1.1.tmp'), '');
    writeFileSync(join(dir, 'notes.txt'), '');
    mkdirSync(join(dir, 'sub'));
    assert.deepEqual([...w.recordStems()].sort(), stems.sort());
    assert.equal(new DiscoveryWriter(join(dir, 'missing')).recordStems().size, 0, 'a missing directory has no records');
  });
});
