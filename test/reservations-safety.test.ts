/**
 * The undo commands do exactly what they say, through the built binary: purge and prune apply the
 * scope they accept, refuse what they do not take, refuse while a monitor runs on the database
 * (unless --force), and a dry run reports exactly what the real run then removes.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeReservations } from '../src/db/reservations';
import { PRESENCE_LOCK_CLASS } from '../src/db/presence';
import { parseHwaddr, parseIPv4 } from '../src/lease';
import { connect, TestCluster } from './helpers/pg';
import { fileStem } from './helpers/leases';
import { A, B, BIN, C, json, ownMacs, PASSWORD, run, Setup, setup, writeConfig, writeRecord } from './helpers/lifecycle';
import { tempDir } from './helpers/monitor';
import { waitFor } from './helpers/wait';

let cluster: TestCluster;
before(() => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run make build`);
  cluster = TestCluster.start();
});
after(() => cluster.stop());

// Own rows in subnet 2 beside A, B, C in subnet 1: D has a hostname, E none.
const D = { ip: '10.21.0.4', mac: '02:00:00:21:00:0d', hostname: 'bmc-d' };
const E = { ip: '10.21.0.5', mac: '0c:c4:7a:21:00:0e', hostname: null };

async function withSubnet2(s: Setup): Promise<void> {
  const c = await connect(s.db);
  const results = await writeReservations(
    c,
    'upsert',
    [D, E].map((d) => ({
      address: parseIPv4(d.ip),
      hwaddr: parseHwaddr(d.mac),
      subnetId: 2,
      hostname: d.hostname,
      source: 'memfile' as const,
    })),
  );
  await c.end();
  results.forEach((r, i) => writeRecord(s.outputDir, [D, E][i], 'created', r.hostId, 2));
}

/** A run's lines with the dry-run marks taken out, to compare with the real run's. */
function asReal(lines: Record<string, unknown>[]): Record<string, unknown>[] {
  return lines.map((l) => ('dry_run' in l ? { ...l, dry_run: false } : l));
}

function firstLine(text: string): string {
  return text.split('\n')[0];
}

describe('purge and prune apply their scope; the dry run reports what the real run does (built binary)', () => {
  for (const mode of ['database', 'file'] as const) {
    test(`purge --subnet-id 2 removes only subnet 2's own rows and records (${mode} mode)`, async () => {
      const s = await setup(cluster, mode);
      await withSubnet2(s);
      const dry = json(s, ['reservations', 'purge', '--subnet-id', '2', '--dry-run']);
      assert.deepEqual(await ownMacs(s.db), [A.mac, B.mac, C.mac, D.mac, E.mac].sort(), 'the dry run removed nothing');
      assert.ok(existsSync(join(s.outputDir, `${fileStem(D.mac)}.json`)));
      const real = json(s, ['reservations', 'purge', '--subnet-id', '2']);
      assert.deepEqual(real.at(-1), { removed: 2, dry_run: false, records_removed: 2 });
      assert.deepEqual(asReal(dry), real, 'the dry run printed what the real run did');
      assert.deepEqual(
        real.slice(0, -1).map((l) => [l.mac, l.subnet_id, l.hostname]),
        [
          [D.mac, 2, 'bmc-d'],
          [E.mac, 2, null],
        ],
      );
      assert.deepEqual(await ownMacs(s.db), [A.mac, B.mac, C.mac].sort(), 'subnet 1 kept');
      for (const d of [A, B, C]) assert.ok(existsSync(join(s.outputDir, `${fileStem(d.mac)}.json`)), `${d.mac}'s record kept`);
      for (const d of [D, E]) assert.ok(!existsSync(join(s.outputDir, `${fileStem(d.mac)}.json`)), `${d.mac}'s record gone`);
    });
  }

  test('the selection rules narrow purge and prune; the config file does not', async () => {
    const s = await setup(cluster, 'file');
    await withSubnet2(s);
    // list's text shows the hostname, and its summary counts the live devices.
    const list = run(s, ['reservations', 'list']);
    assert.equal(list.status, 0, list.stderr);
    const lines = list.stdout.trim().split('\n');
    assert.match(
      lines.find((l) => l.startsWith(D.mac)) ?? '',
      new RegExp(`^${D.mac} 10\\.21\\.0\\.4 {7}subnet 2 host_id \\d+ bmc-d created \\S+Z no live lease$`),
    );
    assert.match(lines.find((l) => l.startsWith(A.mac)) ?? '', / - created \S+Z live$/);
    assert.equal(lines.at(-1), '5 reservations owned by kea-lease-monitor, 1 with a live lease');
    // The daemon's scope in the config file does not narrow an undo.
    writeConfig(s, 'subnet-id: [3]\nallow-mac-prefix: ["0c:c4:7a"]\n');
    // Rows whose MAC starts 0c:c4:7a (E) are kept; every other own row without a live lease goes.
    const dryPrune = json(s, ['reservations', 'prune', '--unseen-for', '0s', '--deny-mac-prefix', '0c:c4:7a', '--dry-run']);
    const prune = json(s, ['reservations', 'prune', '--unseen-for', '0s', '--deny-mac-prefix', '0c:c4:7a']);
    assert.deepEqual(asReal(dryPrune), prune, 'the dry run printed what the real run did');
    assert.deepEqual(
      prune.map((l) => l.mac ?? l.records_removed),
      [B.mac, C.mac, D.mac, 3],
    );
    assert.deepEqual(await ownMacs(s.db), [A.mac, E.mac].sort(), 'A (live) and E (denied) kept');
    // Hostname rule: E has none, so an allow-hostname rule cannot select it.
    assert.deepEqual(json(s, ['reservations', 'purge', '--allow-hostname', '.']).at(-1), {
      removed: 0,
      dry_run: false,
      records_removed: 0,
    });
    assert.deepEqual(json(s, ['reservations', 'purge', '--allow-address', '10.20.0.0/24']).at(-1)?.removed, 1);
    assert.deepEqual(await ownMacs(s.db), [E.mac]);
  });

  test('a flag a command does not take is refused with exit 2 naming it, and nothing changes', async () => {
    const s = await setup(cluster, 'file');
    for (const [args, flag] of [
      [['reservations', 'purge', '--lease-file', '/tmp/x.csv'], 'lease-file'],
      [['reservations', 'purge', '--max-reservations-per-subnet', '5'], 'max-reservations-per-subnet'],
      [['reservations', 'purge', '--use-database-events'], 'use-database-events'],
      [['reservations', 'adopt', '--subnet-id', '2'], 'subnet-id'],
      [['reservations', 'list', '--subnet-id', '2'], 'subnet-id'],
      [['reservations', 'prune', '--unseen-for', '0s', '--batch-size', '5'], 'batch-size'],
      [['db', 'status', '--log-level', 'debug'], 'log-level'],
      [['db', 'migrate', '--output-dir', '/tmp'], 'output-dir'],
      [['plan', '--dry-run'], 'dry-run'],
    ] as const) {
      const r = run(s, [...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      // One line naming the flag once, as typed.
      assert.match(firstLine(r.stderr), new RegExp(`^kea-lease-monitor: unknown flag --${flag} \\(see kea-lease-monitor `));
    }
    assert.deepEqual(await ownMacs(s.db), [A.mac, B.mac, C.mac].sort());
    // run takes every flag, but refuses one its mode does not use, given on the command line.
    for (const [args, line] of [
      [['--kea-api-concurrency', '3'], '--kea-api-concurrency works only with --writer kea-api'],
      [['--kea-api-timeout', '3'], '--kea-api-timeout needs --kea-control-socket'],
      [['--redfish-timeout', '3'], '--redfish-timeout works only with --redfish-probe'],
      [['--use-database-events', '--poll-interval', '1'], '--poll-interval is for file mode: --use-database-events reads lease4'],
      [['--reconcile-interval', '10'], '--reconcile-interval works only with --use-database-events'],
      [['--ha-interval', '1'], '--ha-interval works only with --ha-group'],
      [['--metrics-host', '0.0.0.0'], '--metrics-host needs --metrics-port'],
      [
        // (the connection flags come with every run here)
        ['--writer', 'kea-api', '--kea-control-socket', '/run/kea/x'],
        '--db-host does nothing with --writer kea-api in file mode: no database is used',
      ],
    ] as const) {
      const r = run(s, ['run', ...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, `kea-lease-monitor: ${line} (see kea-lease-monitor run --help)\n`);
    }
  });
});

describe('commands take the configuration, and a lease source only where they read leases (built binary)', () => {
  test('list, adopt and purge without a lease file; db status with --config', async () => {
    const s = await setup(cluster, 'file');
    // The config names a lease file that is not there: list says liveness is unknown, purge never reads it.
    const missing = join(tempDir('klm-none-'), 'kea-leases4.csv');
    writeFileSync(s.configFile, `output-dir: ${JSON.stringify(s.outputDir)}\nlease-file: ${JSON.stringify(missing)}\n`);
    const list = run(s, ['reservations', 'list', '--json']);
    assert.equal(list.status, 0, list.stderr);
    assert.equal(
      firstLine(list.stderr),
      `warning: no lease file at ${missing}: liveness unknown (give --lease-file, --use-database-events or --config)`,
    );
    assert.deepEqual(list.lines.at(-1), { reservations: 3, live: null });
    assert.ok(list.lines.slice(0, -1).every((l) => l.live === null));
    assert.deepEqual(json(s, ['reservations', 'adopt']).at(-1), { adopted: 0, dry_run: false, skipped: 3 });
    assert.deepEqual(json(s, ['reservations', 'purge']).at(-1), { removed: 3, dry_run: false, records_removed: 3 });

    // db status reads the connection settings from the same file as every other command.
    const cfg = join(tempDir('klm-dbcfg-'), 'config.yml');
    writeFileSync(cfg, `db-host: 127.0.0.1\ndb-port: ${s.db.port}\ndb-name: ${s.db.database}\ndb-user: klm_${s.db.database}\n`);
    const r = run({ ...s, args: [] }, ['db', 'status', '--config', cfg]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(firstLine(r.stdout), `database:        klm_${s.db.database}@127.0.0.1:${s.db.port}/${s.db.database}`);
  });
});

describe('purge and prune refuse while a monitor runs on the database (built binary)', () => {
  test('refused with one line naming what to stop; --dry-run warns; --force goes ahead; after the stop it works', async () => {
    const s = await setup(cluster, 'file');
    await cluster.sql(s.db.database, `GRANT SELECT ON schema_version TO klm_${s.db.database}`);
    const daemon: ChildProcess = spawn(BIN, ['run', ...s.args, '--heartbeat-interval', '1'], {
      env: { PATH: '/usr/bin:/bin', HOME: s.outputDir, KEA_DB_PASSWORD: PASSWORD },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    daemon.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => daemon.on('exit', resolve));
    try {
      const pid = await waitFor(
        'the daemon to hold the presence lock',
        async () =>
          (
            await cluster.sql<{ pid: number }>(
              s.db.database,
              `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = 0 AND objsubid = 2 AND granted`,
              [PRESENCE_LOCK_CLASS],
            )
          )[0]?.pid,
        30_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${stderr}`));
      const why =
        `a running kea-lease-monitor is using this database (backend pid ${pid} from 127.0.0.1 as klm_${s.db.database}) ` +
        'and would reserve live devices again: stop it on every host first (systemctl stop kea-lease-monitor, HA peers too), ';
      for (const command of ['purge', 'prune'] as const) {
        const args = command === 'purge' ? ['reservations', 'purge'] : ['reservations', 'prune', '--unseen-for', '0s'];
        const refused = run(s, args);
        assert.equal(refused.status, 1, refused.stderr);
        assert.equal(firstLine(refused.stderr), `kea-lease-monitor: ${why}or run \`reservations ${command}\` with --force`);
        assert.equal(refused.stdout, '');
        const dry = run(s, [...args, '--dry-run', '--json']);
        assert.equal(dry.status, 0, dry.stderr);
        assert.equal(
          firstLine(dry.stderr),
          `warning: ${why}or run \`reservations ${command}\` with --force; without --force the real run refuses`,
        );
      }
      assert.deepEqual(await ownMacs(s.db), [A.mac, B.mac, C.mac].sort(), 'nothing removed while refused');

      const forced = run(s, ['reservations', 'prune', '--unseen-for', '0s', '--force', '--json']);
      assert.equal(forced.status, 0, forced.stderr);
      assert.match(firstLine(forced.stderr), /^warning: --force: a running kea-lease-monitor is using this database/);
      assert.deepEqual(forced.lines.at(-1), { removed: 2, dry_run: false, unseen_for_seconds: 0, records_removed: 2 });
      assert.deepEqual(await ownMacs(s.db), [A.mac]);
    } finally {
      daemon.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    // Stopped: the lock went with its session, so purge runs without --force.
    const r = run(s, ['reservations', 'purge', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(r.lines.at(-1), { removed: 1, dry_run: false, records_removed: 1 });
  });
});
