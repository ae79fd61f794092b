/** The lifecycle commands through the built binary, against a database holding own and operator rows. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeReservations } from '../../src/db/reservations';
import { parseHwaddr, parseIPv4 } from '../../src/lease';
import type { DbOptions } from '../../src/options';
import { readMark } from '../../src/ownership';
import { connect, TestCluster } from './pg';
import { CSV_HEADER, csvRow, fileStem, insertLeases, ipToInt, reservations, TestLease } from './leases';
import { tempDir } from './monitor';

// The built artefact: `make test` builds it first.
export const BIN = join(__dirname, '..', '..', 'dist', 'kea-lease-monitor');
export const PASSWORD = 'lifecycle-secret';
const cwd = tempDir('klm-bin-cwd-');

export interface Setup {
  db: DbOptions;
  outputDir: string;
  /** The YAML file holding the lease source and the output directory, as the daemon reads them. */
  configFile: string;
  /** What the config file holds; a test may add keys to it (writeConfig). */
  config: string;
  /** The connection flags and --config. */
  args: string[];
}

/** Rewrites the setup's config file: its lease source and output directory, then `extra` YAML lines. */
export function writeConfig(s: Setup, extra = ''): void {
  writeFileSync(s.configFile, s.config + extra);
}

export function run(s: Setup, args: string[]) {
  const r = spawnSync(BIN, [...args, ...s.args], {
    cwd,
    env: { PATH: '/usr/bin:/bin', HOME: cwd, KEA_DB_PASSWORD: PASSWORD },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return {
    ...r,
    get lines(): Record<string, unknown>[] {
      return r.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
}

/** Runs a --json command, expects exit 0, returns its lines (the last one is the summary). */
export function json(s: Setup, args: string[]): Record<string, unknown>[] {
  const r = run(s, [...args, '--json']);
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.lines;
}

export const H = 3600;
export const now = () => Math.floor(Date.now() / 1000);

// A: live lease; B: lease expired 2 h ago; C: no lease the store still shows (reservation just made).
export const A = { ip: '10.20.0.1', mac: '02:00:00:20:00:0a' };
export const B = { ip: '10.20.0.2', mac: '02:00:00:20:00:0b' };
export const C = { ip: '10.20.0.3', mac: '02:00:00:20:00:0c' };

export async function setup(cluster: TestCluster, mode: 'database' | 'file'): Promise<Setup> {
  const db = await cluster.freshDatabase();
  await cluster.sql(
    db.database,
    `CREATE ROLE klm_${db.database} LOGIN PASSWORD '${PASSWORD}';
    GRANT SELECT ON lease4 TO klm_${db.database};
    GRANT SELECT, INSERT, UPDATE, DELETE ON hosts TO klm_${db.database};
    GRANT USAGE ON SEQUENCE hosts_host_id_seq TO klm_${db.database}`,
  );
  const outputDir = tempDir('klm-out-');
  const leases: TestLease[] = [{ ...A }, { ...B, expire: now() - 2 * H }];
  const c = await connect(db);
  const args = ['--db-host', '127.0.0.1', '--db-port', String(db.port), '--db-name', db.database, '--db-user', `klm_${db.database}`];
  const configFile = join(tempDir('klm-cfg-'), 'config.yml');
  let config = `output-dir: ${JSON.stringify(outputDir)}\n`;
  if (mode === 'database') {
    await insertLeases(c, leases);
    config += 'use-database-events: true\n';
  } else {
    const file = join(tempDir('klm-leases-'), 'kea-leases4.csv');
    writeFileSync(file, CSV_HEADER + '\n' + leases.map(csvRow).join(''));
    config += `lease-file: ${JSON.stringify(file)}\n`;
  }
  // The monitor's rows, with their discovery records, as the daemon leaves them.
  const results = await writeReservations(
    c,
    'upsert',
    [A, B, C].map((d) => ({
      address: parseIPv4(d.ip),
      hwaddr: parseHwaddr(d.mac),
      subnetId: 1,
      hostname: null,
      source: 'memfile' as const,
    })),
  );
  assert.deepEqual(
    results.map((r) => r.outcome),
    ['created', 'created', 'created'],
  );
  results.forEach((r, i) => writeRecord(outputDir, [A, B, C][i], 'created', r.hostId));
  // The operator's rows: one for a device with a live lease, one for a device with none.
  await c.query(
    `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context) VALUES
      (decode('02aa0000ee01', 'hex'), 0, 1, $1, 'ops-pinned', '{"owner":"ops"}'),
      (decode('02aa0000ee02', 'hex'), 0, 1, $2, 'ops-gone', NULL)`,
    [ipToInt('10.20.1.1'), ipToInt('10.20.1.2')],
  );
  await c.end();
  writeFileSync(configFile, config);
  args.push('--config', configFile);
  return { db, outputDir, configFile, config, args };
}

export function writeRecord(dir: string, d: { ip: string; mac: string }, reservation: string, hostId: number | null, subnet = 1): void {
  writeFileSync(
    join(dir, `${fileStem(d.mac)}.json`),
    JSON.stringify({
      mac: d.mac,
      ip: d.ip,
      hostname: null,
      subnet_id: subnet,
      first_seen: '2025-01-01T00:00:00.000Z',
      last_seen: new Date().toISOString(),
      source: 'file', // as records said before the source was called memfile everywhere: adopt still reads it
      reservation,
      host_id: hostId,
    }),
  );
}

export async function operatorRows(db: DbOptions) {
  const c = await connect(db);
  try {
    return (await reservations(c)).filter((r) => !readMark(r.user_context));
  } finally {
    await c.end();
  }
}

export async function ownMacs(db: DbOptions): Promise<string[]> {
  const c = await connect(db);
  try {
    return (await reservations(c))
      .filter((r) => readMark(r.user_context))
      .map((r) => r.mac)
      .sort();
  } finally {
    await c.end();
  }
}
