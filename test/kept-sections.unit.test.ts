// BENCHMARKS.md: make bench rewrites it whole and keeps the sections other benchmark commands wrote.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { keptSections, putSection } from '../bench/lib/kept-sections';
import { tempDir } from './helpers/monitor';

test('a section is appended once, replaced in place on the next run, and found again for make bench to keep', () => {
  const file = join(tempDir('klm-bench-md-'), 'BENCHMARKS.md');
  writeFileSync(file, '# Benchmarks\n\n| table |\n');
  putSection('make bench-redfish', '## Redfish\n\nfirst', file);
  putSection('bench/reconcile.ts', '## Reconcile\n\nonly', file);
  putSection('make bench-redfish', '## Redfish\n\nsecond', file);
  const text = readFileSync(file, 'utf8');
  assert.equal(text.match(/<!-- begin: make bench-redfish -->/g)?.length, 1);
  assert.ok(!text.includes('first') && text.includes('second'));
  assert.ok(text.indexOf('second') < text.indexOf('## Reconcile'), 'replaced where it stood');
  assert.deepEqual(
    keptSections(text).map((b) => b.split('\n')[1]),
    ['## Redfish', '## Reconcile'],
  );
  assert.ok(text.startsWith('# Benchmarks\n\n| table |\n'), 'the rest is untouched');
});
