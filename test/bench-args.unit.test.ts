// The benchmarks refuse what they do not know before they start: a mistyped flag once started a full
// `make bench` that would have rewritten BENCHMARKS.md.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = join(__dirname, '..');

function bench(script: string, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', script), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cases: Array<[string, string[], RegExp]> = [
  ['run.ts', ['--hlep'], /Unknown option '--hlep'/],
  ['run.ts', ['--only', 'burst,burts'], /--only: unknown "burts"/],
  ['run.ts', ['--runs', '0'], /--runs "0": not a whole number/],
  ['run.ts', ['--db-fs', 'ext4'], /--db-fs: unknown "ext4"/],
  ['run.ts', ['--runs'], /argument missing/],
  ['fleet.ts', ['--quik'], /Unknown option '--quik'/],
  ['redfish.ts', ['extra'], /Unexpected argument 'extra'/],
  ['footprint.ts', ['--only', 'one'], /--only "one": not a list of whole numbers/],
  ['writer-split.ts', ['--only', 'function,raw-upsert'], /--only: unknown "raw-upsert"/],
  ['writer-split.ts', ['--batch', '1e3'], /--batch "1e3": not a whole number/],
  ['prep-probe.ts', ['--calls'], /argument missing/],
  ['log-cost.ts', ['--runs', 'three'], /--runs "three": not a whole number/],
  ['log-cost.ts', ['--child', 'current', 'text'], /Unknown option '--child'/],
  ['kea-api.ts', ['--concurrency', '1,x'], /--concurrency "1,x": not a list of whole numbers/],
  ['replay-rss.ts', ['1000'], /Unexpected argument '1000'/],
  ['baseline-seed.ts', ['--variant', 'upsert,select-insert'], /--variant "upsert,select-insert": one value, not a list/],
];

for (const [script, args, why] of cases) {
  test(`bench/${script} ${args.join(' ')}: exit 2 naming the cause, BENCHMARKS.md untouched`, () => {
    const before = readFileSync(join(ROOT, 'BENCHMARKS.md'), 'utf8');
    const r = bench(script, ...args);
    assert.equal(r.code, 2, r.stderr + r.stdout);
    assert.match(r.stderr, why);
    assert.match(r.stderr, /usage: node --import tsx bench\//);
    assert.equal(r.stdout, '');
    assert.equal(readFileSync(join(ROOT, 'BENCHMARKS.md'), 'utf8'), before);
  });
}

test('bench/run.ts --help lists every option and exits 0 without starting anything', () => {
  const r = bench('run.ts', '--help');
  assert.equal(r.code, 0, r.stderr);
  for (const o of ['--runs', '--quick', '--only', '--no-write', '--db-rates', '--db-fs', '--help'])
    assert.match(r.stdout, new RegExp(`^  ${o}\\b`, 'm'));
  assert.doesNotMatch(r.stdout, /^bench: runs=/m);
});
