import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildMigrationsVersion } from '../src/db/migrations-version';
import type { DbOptions } from '../src/options';
import { connect, TestCluster } from './helpers/pg';
import { CSV_HEADER, csvRow, fileStem, insertLeases, manyLeases, reservations } from './helpers/leases';
import { tempDir } from './helpers/monitor';
import { waitFor } from './helpers/wait';

// The built artefact, not the sources: `make test` builds it first.
const BIN = join(__dirname, '..', 'dist', 'kea-lease-monitor');
const PASSWORD = 'Pa55-word-never-in-argv';

let cluster: TestCluster;
let db: DbOptions;
// Runs from an empty directory with no node_modules and no migrations/ beside it.
const cwd = tempDir('klm-bin-cwd-');
// No NODE_OPTIONS or KEA_LM_* from the caller's environment.
const cleanEnv = { PATH: '/usr/bin:/bin', HOME: cwd };

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(BIN, args, { cwd, env: { ...cleanEnv, ...env }, encoding: 'utf8', timeout: 30_000 });
}

function dbArgs(d: DbOptions): string[] {
  return ['--db-host', '127.0.0.1', '--db-port', String(d.port), '--db-name', d.database, '--db-user', 'klm_monitor'];
}

before(async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run make build`);
  cluster = TestCluster.start();
  db = await cluster.freshDatabase();
  // A least-privileged runtime role over TCP with a password, as in production.
  await cluster.sql(db.database, `CREATE ROLE klm_monitor LOGIN PASSWORD '${PASSWORD}'`);
  await cluster.sql(
    db.database,
    `GRANT SELECT ON lease4 TO klm_monitor;
    GRANT SELECT, INSERT, UPDATE ON hosts TO klm_monitor;
    GRANT USAGE ON SEQUENCE hosts_host_id_seq TO klm_monitor`,
  );
});
after(() => cluster.stop());

describe('the built binary', () => {
  test('--help documents the contract and exits 0', () => {
    const r = run(['--help']);
    assert.equal(r.status, 0, r.stderr);
    for (const flag of [
      '--use-database-events',
      '--db-host',
      '--db-port',
      '--db-name',
      '--db-user',
      '--db-password',
      '--db-password-file',
      '--subnet-id',
      '--output-dir',
      '--lease-file',
      '--poll-interval',
      '--log-level',
      '--log-format',
      'KEA_LM_DB_HOST',
    ]) {
      assert.ok(r.stdout.includes(flag), `--help mentions ${flag}`);
    }
    assert.match(run(['db', '--help']).stdout, /migrate[\s\S]*rollback[\s\S]*status/);
  });

  test('unknown flags and bad values exit 2 with one clear line', () => {
    for (const [args, env, why] of [
      [['--bogus'], {}, /unknown flag --bogus \(see kea-lease-monitor --help\)/],
      [['--db-port', 'x'], {}, /--db-port: "x" is not a whole number/],
      [['--log-level', 'loud'], {}, /log-level/],
      [[], { KEA_LM_SUBNET_ID: 'all' }, /KEA_LM_SUBNET_ID: "all" is not a subnet id/],
      [['db'], {}, /name a db command/],
    ] as [string[], Record<string, string>, RegExp][]) {
      const r = run(args, env);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, why);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    }
  });

  test('db migrate/rollback/status use the SQL embedded at build time and report "changed"', () => {
    const su = ['--db-host', db.host, '--db-port', String(db.port), '--db-name', db.database, '--db-user', 'postgres'];
    const parse = (r: ReturnType<typeof run>) => {
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    assert.deepEqual(parse(run(['db', 'migrate', '--notify', '--dry-run', '--json', ...su])), {
      changed: true,
      applied: ['0002_lease4_notify', '0003_migrations_version'],
      dry_run: true,
    });
    assert.equal(parse(run(['db', 'status', '--json', ...su])).notify_trigger, false);
    assert.deepEqual(parse(run(['db', 'migrate', '--notify', '--json', ...su])), {
      changed: true,
      applied: ['0002_lease4_notify', '0003_migrations_version'],
      dry_run: false,
    });
    assert.deepEqual(parse(run(['db', 'migrate', '--notify', '--json', ...su])), { changed: false, applied: [], dry_run: false });
    const status = parse(run(['db', 'status', '--json', ...su]));
    assert.deepEqual([status.notify_trigger, status.schema_version, status.migrations_version], [true, '13.0', buildMigrationsVersion()]);
    const bad = run(['db', 'status', '--json', '--db-host', '127.0.0.1', '--db-port', '1', '--db-user', 'nobody']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /cannot connect to nobody@127\.0\.0\.1:1\/kea/);
  });

  test('a real run in database mode: password only in the environment, reservation and record, SIGTERM exits 0', async () => {
    const out = tempDir('klm-bin-out-');
    const metricsPort = await freePort();
    const child = spawn(
      BIN,
      ['--use-database-events', ...dbArgs(db), '--output-dir', out, '--log-format', 'json', '--metrics-port', String(metricsPort)],
      {
        cwd,
        env: { ...cleanEnv, KEA_DB_PASSWORD: PASSWORD },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const stderr = collect(child);
    try {
      await waitFor('listening', () => stderr().includes('Listening for database lease events'), 15_000);
      assert.equal(inProcessList(child.pid, PASSWORD), false, 'the password is not in the process list');
      const c = await connect(db);
      const [lease] = manyLeases(1, 900);
      await insertLeases(c, [lease]);
      await waitFor('record', () => existsSync(join(out, `${fileStem(lease.mac)}.json`)), 15_000);
      const rows = await reservations(c);
      await c.end();
      assert.deepEqual(
        rows.map((r) => [r.mac, r.ip]),
        [[lease.mac, lease.ip]],
      );
      assert.ok(stderr().includes('Static reservation created'));
      assert.ok(!stderr().includes(PASSWORD), 'the password is never logged');
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(metrics, /^kea_lease_monitor_reservations_total\{result="created",subnet_id="1"\} 1$/m);
      assert.match(metrics, /^kea_lease_monitor_listener_connected 1$/m);
      const started = Date.now();
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      assert.equal(code, 0);
      assert.ok(Date.now() - started < 5000, 'stops within a few seconds');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a real run in file mode with the password from a file, and --db-password warns', async () => {
    const out = tempDir('klm-bin-out-');
    const leases = tempDir('klm-bin-leases-');
    const secret = join(tempDir('klm-bin-secret-'), 'pw');
    writeFileSync(secret, PASSWORD + '\n', { mode: 0o600 });
    const file = join(leases, 'kea-leases4.csv');
    const [lease] = manyLeases(1, 901);
    writeFileSync(file, CSV_HEADER + '\n' + csvRow(lease));
    const child = spawn(BIN, [...dbArgs(db), '--db-password-file', secret, '--lease-file', file, '--output-dir', out], {
      cwd,
      env: cleanEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stderr = collect(child);
    try {
      await waitFor('record', () => existsSync(join(out, `${fileStem(lease.mac)}.json`)), 15_000);
      child.kill('SIGINT');
      assert.equal(await new Promise((resolve) => child.on('exit', resolve)), 0);
      assert.ok(existsSync(join(out, '.memfile-position.json')));
    } finally {
      child.kill('SIGKILL');
    }
    assert.ok(stderr().includes('Watching the lease file'));
    assert.ok(!stderr().includes(PASSWORD), 'the password is never logged');
    const warned = run(['db', 'status', ...dbArgs(db), '--db-password', PASSWORD]);
    assert.equal(warned.status, 0, warned.stderr);
    assert.match(warned.stderr, /--db-password shows in the process list/);
  });

  test('the systemd credential works, and the process-list check does catch a password passed as --db-password', async () => {
    // The credential directory systemd's LoadCredential= provides (TCP with scram: a wrong or
    // missing password would fail, so success proves the secret was read from there).
    const creds = tempDir('klm-bin-creds-');
    writeFileSync(join(creds, 'db-password'), PASSWORD + '\n', { mode: 0o600 });
    const viaCredential = run(['db', 'status', '--json', ...dbArgs(db)], { CREDENTIALS_DIRECTORY: creds });
    assert.equal(viaCredential.status, 0, viaCredential.stderr);
    const without = run(['db', 'status', '--json', ...dbArgs(db)]);
    assert.equal(without.status, 1, 'without any secret the login fails, so the channels above were really used');

    // The same check as above, on a daemon that was given the password on its command line.
    const out = tempDir('klm-bin-out-');
    const child = spawn(
      BIN,
      ['--use-database-events', ...dbArgs(db), '--db-password', PASSWORD, '--output-dir', out, '--log-format', 'json'],
      {
        cwd,
        env: cleanEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const stderr = collect(child);
    try {
      await waitFor('listening', () => stderr().includes('Listening for database lease events'), 15_000);
      assert.equal(inProcessList(child.pid, PASSWORD), true, 'the check sees a password that is in argv');
      assert.match(stderr(), /--db-password shows in the process list/);
      assert.ok(!stderr().includes(PASSWORD), 'still never logged');
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a missing privilege: exit 1 with one error line naming the privilege, the role and the GRANT', async () => {
    const role = 'klm_noinsert';
    await cluster.sql(
      db.database,
      `CREATE ROLE ${role} LOGIN PASSWORD '${PASSWORD}';
      GRANT SELECT ON lease4 TO ${role}; GRANT SELECT, UPDATE ON hosts TO ${role}; GRANT USAGE ON SEQUENCE hosts_host_id_seq TO ${role}`,
    );
    const file = join(tempDir('klm-bin-leases-'), 'kea-leases4.csv');
    writeFileSync(file, CSV_HEADER + '\n' + csvRow(manyLeases(1, 990)[0]));
    const args = [...dbArgs(db).slice(0, -1), role, '--lease-file', file, '--output-dir', tempDir('klm-bin-out-')];
    const child = spawn(BIN, args, { cwd, env: { ...cleanEnv, KEA_DB_PASSWORD: PASSWORD }, stdio: ['ignore', 'pipe', 'pipe'] });
    const stderr = collect(child);
    const code = await Promise.race([
      new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c))),
      new Promise<string>((resolve) => setTimeout(() => resolve('still running after 20 s'), 20_000)),
    ]);
    child.kill('SIGKILL');
    assert.equal(code, 1, stderr());
    const errors = stderr()
      .split('\n')
      .filter((l) => / error /.test(l));
    assert.deepEqual(
      errors.map((l) => l.replace(/^\S+ error /, '')),
      [`role "${role}" lacks INSERT on table hosts: GRANT INSERT ON hosts TO ${role}`],
    );
  });
});

test('with the database unreachable it retries, logs the outage once, and still stops cleanly on SIGTERM', async () => {
  const out = tempDir('klm-bin-out-');
  // A "database" that drops every connection at once, counting the attempts: the retries are seen, not assumed.
  let attempts = 0;
  const dropper = createServer((socket) => {
    attempts++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve));
  const port = String((dropper.address() as AddressInfo).port);
  after(() => dropper.close());
  for (const mode of [['--use-database-events'], ['--lease-file', join(tempDir('klm-bin-leases-'), 'kea-leases4.csv')]]) {
    if (mode[0] === '--lease-file') writeFileSync(mode[1], CSV_HEADER + '\n' + csvRow(manyLeases(1, 950)[0]));
    attempts = 0;
    const child = spawn(BIN, [...mode, '--db-host', '127.0.0.1', '--db-port', port, '--output-dir', out, '--reconnect-max-delay', '0.2'], {
      cwd,
      env: cleanEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stderr = collect(child);
    try {
      const outageLines = () =>
        stderr()
          .split('\n')
          .filter((l) =>
            / (error|warn) .*(Lost the database listener|Cannot connect the database listener|Cannot write reservations)/.test(l),
          );
      // Start-up time varies with the machine's load: wait for the first line, then for several
      // retries (0.2 s apart at most) that must not log again.
      await waitFor('the outage logged', () => outageLines().length > 0, 20_000);
      const seen = attempts;
      await waitFor('ten more connection attempts', () => attempts >= seen + 10, 20_000);
      assert.equal(outageLines().length, 1, `one error line per outage in ${mode[0]} after ${attempts} attempts:\n${stderr()}`);
      child.kill('SIGTERM');
      assert.equal(await new Promise((resolve) => child.on('exit', resolve)), 0, stderr());
    } finally {
      child.kill('SIGKILL');
    }
  }
});

/** Whether `secret` shows in the process list: /proc/PID/cmdline and `ps` (what any local user sees). */
function inProcessList(pid: number | undefined, secret: string): boolean {
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  const ps = spawnSync('ps', ['-ww', '-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).stdout;
  return cmdline.includes(secret) || ps.includes(secret);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function collect(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.on('data', (d: Buffer) => (text += d.toString()));
  child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  return () => text;
}
