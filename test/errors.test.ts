/**
 * Errors that name the cause: each refusal is one line saying what is wrong and what fixes it, with
 * its exit code, through the built binary against a throwaway PostgreSQL holding Kea's real schema.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { AddressInfo, createServer, Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DbOptions } from '../src/options';
import { CSV_HEADER, csvRow, manyLeases } from './helpers/leases';
import { tempDir } from './helpers/monitor';
import { dbFlags, TestCluster } from './helpers/pg';
import { waitFor } from './helpers/wait';

const BIN = join(__dirname, '..', 'dist', 'kea-lease-monitor');
const NO_SCHEMA =
  "no Kea schema here (table schema_version is missing): is --db-name Kea's database, initialised with `kea-admin db-init pgsql`?";
const PASSWORD = 'n0t-the-owner';

let cluster: TestCluster;
let kea: DbOptions;
let empty: DbOptions;
const cwd = tempDir('klm-err-cwd-');
const cleanEnv = { PATH: '/usr/bin:/bin', HOME: cwd };

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(BIN, args, { cwd, env: { ...cleanEnv, ...env }, encoding: 'utf8', timeout: 30_000 });
}

/** Runs a copy of the binary as `uid`: the checkout may sit under a directory only root can enter (mktemp -d). */
function runAs(uid: number, args: string[]) {
  const dir = tempDir('klm-err-bin-');
  chmodSync(dir, 0o755);
  const bin = join(dir, 'kea-lease-monitor');
  copyFileSync(BIN, bin);
  chmodSync(bin, 0o755);
  return spawnSync(bin, args, { cwd: dir, env: { ...cleanEnv, HOME: dir }, encoding: 'utf8', timeout: 30_000, uid, gid: uid });
}

const firstLine = (text: string): string => text.split('\n')[0];

/** The daemon's JSON log lines at warn or above: the first must be the fatal error. */
function problems(stderr: string): { level: string; message: string }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: string; message: string })
    .filter((l) => l.level === 'warn' || l.level === 'error');
}

function leaseFile(rows: string[] = []): string {
  const file = join(tempDir('klm-err-leases-'), 'kea-leases4.csv');
  writeFileSync(file, [CSV_HEADER, ...rows].join('\n') + '\n');
  return file;
}

function listen(): Promise<Server> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => resolve(srv));
  });
}

before(async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run make build`);
  cluster = TestCluster.start();
  kea = await cluster.freshDatabase();
  await cluster.sql('postgres', `CREATE DATABASE ${kea.database}_empty`);
  empty = cluster.db(`${kea.database}_empty`);
  // A role that may write reservations but does not own Kea's tables, over TCP with a password.
  await cluster.sql(kea.database, `CREATE ROLE klm_writer LOGIN PASSWORD '${PASSWORD}'`);
  await cluster.sql(
    kea.database,
    'GRANT SELECT, INSERT, UPDATE, DELETE ON hosts, lease4 TO klm_writer; GRANT SELECT ON schema_version TO klm_writer',
  );
  await cluster.sql(kea.database, 'REVOKE CREATE ON SCHEMA public FROM PUBLIC');
});
after(() => cluster.stop());

describe('a database without Kea schema', () => {
  for (const command of [
    ['db', 'status'],
    ['plan', '--use-database-events'],
    ['reservations', 'list', '--use-database-events'],
  ]) {
    test(`${command.join(' ')} says what run says, exit 1`, () => {
      const r = run([...command, ...dbFlags(empty)]);
      assert.equal(firstLine(r.stderr), `kea-lease-monitor: ${NO_SCHEMA}`);
      assert.equal(r.status, 1);
    });
  }

  test('run logs the refusal before its shutdown summary, exit 1', () => {
    const r = run(['--use-database-events', ...dbFlags(empty), '--output-dir', tempDir(), '--log-format', 'json']);
    assert.equal(r.status, 1, r.stderr);
    const [first] = problems(r.stderr);
    assert.deepEqual([first?.level, first?.message], ['error', NO_SCHEMA]);
    const lines = r.stderr.split('\n');
    const error = lines.findIndex((l) => l.includes('no Kea schema here'));
    const stopped = lines.findIndex((l) => l.includes('"message":"Stopped"'));
    assert.ok(error >= 0 && (stopped === -1 || error < stopped), `the error comes before "Stopped":\n${r.stderr}`);
    assert.equal(lines.filter((l) => l.includes('no Kea schema here')).length, 1, 'logged once');
  });
});

describe('the lease file', () => {
  test('a directory: plan and run name the path, exit 2', () => {
    const dir = join(tempDir('klm-err-leases-'), 'kea-leases4.csv');
    mkdirSync(dir);
    const want = `kea-lease-monitor: --lease-file ${dir} is a directory: give Kea's lease file itself (e.g. ${dir}/kea-leases4.csv)`;
    const plan = run(['plan', ...dbFlags(kea), '--lease-file', dir]);
    assert.equal(firstLine(plan.stderr), `${want} (see kea-lease-monitor plan --help)`);
    assert.equal(plan.status, 2);
    const daemon = run([...dbFlags(kea), '--lease-file', dir, '--output-dir', tempDir()]);
    assert.equal(firstLine(daemon.stderr), `${want} (see kea-lease-monitor --help)`);
    assert.equal(daemon.status, 2);
  });

  // Root reads everything: the check runs the binary as nobody.
  const notRoot = process.getuid?.() !== 0 && 'needs root (to make the file root:_kea and run as nobody)';
  test("unreadable: names the file, the user and Kea's group, exit 1", { skip: notRoot }, () => {
    const dir = tempDir('klm-err-leases-');
    chmodSync(dir, 0o755);
    const file = join(dir, 'kea-leases4.csv');
    writeFileSync(file, CSV_HEADER + '\n', { mode: 0o640 });
    chownSync(file, 0, 105); // root:_kea, mode 0640: as Kea 3.0 writes it
    const group = spawnSync('getent', ['group', '105'], { encoding: 'utf8' }).stdout.split(':')[0] || 'gid 105';
    const out = tempDir('klm-err-out-');
    chmodSync(out, 0o777);
    const r = runAs(65534, [...dbFlags(kea), '--lease-file', file, '--output-dir', out]);
    assert.equal(
      firstLine(r.stderr),
      `kea-lease-monitor: --lease-file ${file}: permission denied for user nobody: Kea writes its lease file readable by its group only; add nobody to group ${group} (usermod -aG ${group} nobody) and restart`,
    );
    assert.equal(r.status, 1);
  });

  test('in a directory that does not exist: refused at once, exit 2', () => {
    const file = join(tempDir('klm-err-leases-'), 'kae', 'kea-leases4.csv');
    const r = run([...dbFlags(kea), '--lease-file', file, '--output-dir', tempDir()]);
    assert.equal(
      firstLine(r.stderr),
      `kea-lease-monitor: --lease-file ${file}: directory ${join(file, '..')} does not exist (a mistyped path? Kea's default is /var/lib/kea/kea-leases4.csv) (see kea-lease-monitor --help)`,
    );
    assert.equal(r.status, 2);
  });

  test('not there yet: the monitor waits, not ready with the reason, and repeats the warning', async () => {
    const file = join(tempDir('klm-err-leases-'), 'kea-leases4.csv');
    const srv = await listen();
    const port = (srv.address() as AddressInfo).port;
    await new Promise((resolve) => srv.close(resolve));
    const child = spawn(
      BIN,
      [...dbFlags(kea), '--lease-file', file, '--output-dir', tempDir(), '--poll-interval', '0.1', '--metrics-port', String(port)],
      { cwd, env: { ...cleanEnv }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const warnings = () => stderr.split('\n').filter((l) => l.includes('Lease file does not exist yet')).length;
      // Every 12 poll intervals, at least a second apart.
      await waitFor('the warning repeated', () => warnings() >= 3, 15_000);
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.equal(res.status, 503);
      assert.equal(await res.text(), `not ready: source: lease file ${file} does not exist (waiting for Kea to create it)\n`);
      writeFileSync(file, CSV_HEADER + '\n');
      await waitFor('ready once Kea created it', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 15_000);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.on('exit', resolve));
    }
  });
});

test('reservations adopt without the output directory: names it, exit 2', () => {
  const dir = join(tempDir('klm-err-out-'), 'discovery');
  const r = run(['reservations', 'adopt', ...dbFlags(kea), '--output-dir', dir]);
  assert.equal(
    firstLine(r.stderr),
    `kea-lease-monitor: --output-dir ${dir} does not exist: adopt reads the discovery records the daemon wrote there; give the daemon's --output-dir (see kea-lease-monitor reservations adopt --help)`,
  );
  assert.equal(r.status, 2);
});

test('the metrics port in use: names the address and the flags, first line, exit 1', async () => {
  const srv = await listen();
  const port = (srv.address() as AddressInfo).port;
  try {
    const r = run([
      ...dbFlags(kea),
      '--lease-file',
      leaseFile(),
      '--output-dir',
      tempDir(),
      '--metrics-port',
      String(port),
      '--log-format',
      'json',
    ]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(
      problems(r.stderr)[0]?.message,
      `cannot serve metrics on 127.0.0.1:${port}: address already in use (another kea-lease-monitor or exporter?); choose another --metrics-port or --metrics-host (--metrics-port 0 turns the endpoint off)`,
    );
  } finally {
    srv.close();
  }
});

test("db migrate as a role that does not own Kea's tables: names the owner, exit 1", () => {
  const r = run(
    ['db', 'migrate', '--db-host', '127.0.0.1', '--db-port', String(kea.port), '--db-name', kea.database, '--db-user', 'klm_writer'],
    {
      KEA_DB_PASSWORD: PASSWORD,
    },
  );
  assert.equal(
    firstLine(r.stderr),
    `kea-lease-monitor: db migrate: role "klm_writer" may not change Kea's schema (0004_reservation_writer failed: permission denied for schema public, SQLSTATE 42501): run it as "postgres", the owner of Kea's tables (--db-user postgres)`,
  );
  assert.equal(r.status, 1);
});

describe('no misleading line before the cause', () => {
  test('a wrong password: "cannot log in" is the first problem, not "unreachable", exit 1', () => {
    const r = run(
      [
        '--use-database-events',
        '--db-host',
        '127.0.0.1',
        '--db-port',
        String(kea.port),
        '--db-name',
        kea.database,
        '--db-user',
        'klm_writer',
      ],
      { KEA_DB_PASSWORD: 'wrong', KEA_LM_OUTPUT_DIR: tempDir(), KEA_LM_LOG_FORMAT: 'json' },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.equal(
      problems(r.stderr)[0]?.message,
      `cannot log in to klm_writer@127.0.0.1:${kea.port}/${kea.database} as "klm_writer": password authentication failed for user "klm_writer" (SQLSTATE 28P01): fix the password (KEA_DB_PASSWORD, --db-password-file or the "db-password" credential), the role or pg_hba.conf`,
    );
    assert.doesNotMatch(r.stderr, /unreachable/i);
  });

  test('a database down at start: nothing was "lost"', async () => {
    const child = spawn(
      BIN,
      ['--use-database-events', '--db-host', '127.0.0.1', '--db-port', '1', '--output-dir', tempDir(), '--reconnect-max-delay', '0.2'],
      {
        cwd,
        env: cleanEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await waitFor(
        'the listener retrying',
        () => stderr.includes('Cannot connect the database listener yet; retrying with backoff'),
        20_000,
      );
      assert.doesNotMatch(stderr, /Lost the database listener/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.on('exit', resolve));
    }
  });
});

test('flag errors: one line naming the flag, the value and what is accepted, exit 2', () => {
  for (const [args, want] of [
    [['--subnet-id', 'abc'], '--subnet-id: "abc" is not a subnet id (a whole number from 1 to 4294967294) (see kea-lease-monitor --help)'],
    [['--batch-size', '-1'], '--batch-size: "-1" is not a whole number from 1 to 10000 (see kea-lease-monitor --help)'],
    [['--frobnicate'], 'unknown flag --frobnicate (see kea-lease-monitor --help)'],
    [['plan', '--frobnicate=1'], 'unknown flag --frobnicate (see kea-lease-monitor plan --help)'],
    // yargs reads it as "such-flag" negated; the message names what was typed.
    [['--no-such-flag'], 'unknown flag --no-such-flag (see kea-lease-monitor --help)'],
    [['--log-level', 'verbose'], '--log-level: "verbose" is not one of error, warn, info, debug (see kea-lease-monitor --help)'],
    [['reservations', 'prune'], '--unseen-for is required (see kea-lease-monitor reservations prune --help)'],
    // A value flag with nothing after it is refused, not dropped (nor, for --subnet-id, read as "every subnet").
    [['--metrics-port'], '--metrics-port needs a value (see kea-lease-monitor --help)'],
    [['--subnet-id', '--dry-run'], '--subnet-id needs a value (see kea-lease-monitor --help)'],
    [['plan', '--lease-file'], '--lease-file needs a value (see kea-lease-monitor plan --help)'],
  ] as [string[], string][]) {
    const r = run(args);
    assert.equal(r.stderr, `kea-lease-monitor: ${want}\n`, args.join(' '));
    assert.equal(r.status, 2, args.join(' '));
  }
});

test('plan reports malformed rows as the daemon does: a warning each, and the count', () => {
  const good = manyLeases(2, 700).map(csvRow);
  const bad = ['not,a,lease', '10.0.0.300,aa:bb:cc:dd:ee:ff,,3600,9999999999,1,0,0,x,0,', 'garbage', ',,,,,,,,,,'];
  const file = leaseFile([good[0], ...bad, good[1]]);
  const text = run(['plan', ...dbFlags(kea), '--lease-file', file, '--log-format', 'json']);
  assert.equal(text.status, 0, text.stderr);
  assert.equal(text.stdout.trim().split('\n').pop(), '2 live leases: 2 create; 4 malformed lease file rows skipped');
  const warned = problems(text.stderr);
  assert.deepEqual(
    warned.map((w) => w.message),
    Array(4).fill('Malformed lease file row skipped'),
  );
  const json = run(['plan', ...dbFlags(kea), '--lease-file', file, '--json', '--log-level', 'error']);
  assert.equal(json.status, 0, json.stderr);
  assert.equal(json.stderr, '');
  const summary = JSON.parse(json.stdout.trim().split('\n').pop() ?? '{}');
  assert.equal(summary.malformed_rows, 4);
  assert.equal(summary.leases, 2);
});
