// Throwaway PostgreSQL (scripts/pg-throwaway.sh: real Kea schema) and small query helpers.
import { Client } from 'pg';
import { join } from 'node:path';
import { onCleanup, run } from './proc';

export const ROOT = join(__dirname, '..', '..', '..');

export interface Pg {
  dir: string;
  host: string;
  port: number;
  user: string;
  database: string;
}

/** scripts/pg-throwaway.sh start DIR [ARGS]; its stop is registered first, so a half-started cluster is still stopped. */
export async function startThrowaway(dir: string, env: NodeJS.ProcessEnv, args: string[] = []): Promise<Pg> {
  const script = join(ROOT, 'scripts/pg-throwaway.sh');
  onCleanup(`pg ${dir}`, async () => {
    await run(script, ['stop', dir], { allowFail: true });
  });
  const r = await run(script, ['start', dir, ...args], { env });
  const kv = Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string]),
  );
  return { dir, host: kv.PGHOST, port: Number(kv.PGPORT), user: kv.PGUSER, database: kv.PGDATABASE };
}

/** schemaFile: a Kea release's dhcpdb_create.pgsql (default: this machine's kea-admin db-init). */
export async function startPg(dir: string, opts: { durable?: boolean; statStatements?: boolean; schemaFile?: string } = {}): Promise<Pg> {
  const env = { ...process.env, PG_DURABLE: opts.durable ? '1' : '0', ...(opts.schemaFile ? { KEA_SCHEMA_FILE: opts.schemaFile } : {}) };
  const pg = await startThrowaway(dir, env);
  if (opts.statStatements) {
    await query(pg, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
    // pg_ctl restart reuses the original -o options (postmaster.opts).
    await run(
      'runuser',
      [
        '-u',
        'postgres',
        '--',
        '/usr/lib/postgresql/15/bin/pg_ctl',
        '-D',
        join(dir, 'data'),
        '-l',
        join(dir, 'postgres.log'),
        '-w',
        '-t',
        '30',
        'restart',
      ],
      {},
    );
    await query(pg, 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  }
  return pg;
}

export function client(pg: Pg, appName = 'e2e'): Client {
  const c = new Client({ host: pg.host, port: pg.port, user: pg.user, database: pg.database, application_name: appName });
  c.on('error', () => undefined); // a server stopped under an idle client must not crash the harness; queries still reject
  return c;
}

export async function query<T = Record<string, unknown>>(pg: Pg, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = client(pg);
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

export function pgEnv(pg: Pg): Record<string, string> {
  return {
    KEA_LM_DB_HOST: pg.host,
    KEA_LM_DB_PORT: String(pg.port),
    KEA_LM_DB_NAME: pg.database,
    KEA_LM_DB_USER: pg.user,
    KEA_DB_PASSWORD: 'unused-trust-auth',
  };
}

/** Invariants the issue asks for, on the hosts table against a set of leased (mac, ip, subnet). */
export interface HostCheck {
  hosts: number;
  duplicates: number; // more than one row per (mac, subnet)
  conflicts: number; // more than one row per (ip, subnet)
  missing: string[]; // leased mac without a reservation for its leased address
  wrong: string[]; // reservation for a different address than leased
  extra: string[]; // reservation whose MAC holds no lease in the given set
}

export interface LeasedMac {
  mac: string;
  ip: string;
  subnet: number;
}

export async function checkHosts(pg: Pg, leased: LeasedMac[]): Promise<HostCheck> {
  const rows = await query<{ mac: string; ip: string; subnet: string }>(
    pg,
    `SELECT encode(dhcp_identifier,'hex') AS mac, host('0.0.0.0'::inet + ipv4_address) AS ip, dhcp4_subnet_id::text AS subnet
       FROM hosts WHERE dhcp_identifier_type = 0`,
  );
  const byMac = new Map<string, string[]>();
  const byIp = new Map<string, number>();
  for (const r of rows) {
    const k = `${r.mac}/${r.subnet}`;
    byMac.set(k, [...(byMac.get(k) ?? []), r.ip]);
    const ki = `${r.ip}/${r.subnet}`;
    byIp.set(ki, (byIp.get(ki) ?? 0) + 1);
  }
  const missing: string[] = [];
  const wrong: string[] = [];
  for (const l of leased) {
    const ips = byMac.get(`${l.mac.replace(/[:-]/g, '').toLowerCase()}/${l.subnet}`);
    if (!ips) missing.push(`${l.mac} ${l.ip}`);
    else if (!ips.includes(l.ip)) wrong.push(`${l.mac} leased ${l.ip} reserved ${ips.join(',')}`);
  }
  const leasedKeys = new Set(leased.map((l) => `${l.mac.replace(/[:-]/g, '').toLowerCase()}/${l.subnet}`));
  const extra = [...byMac.entries()].filter(([k]) => !leasedKeys.has(k)).map(([k, ips]) => `${k} ${ips.join(',')}`);
  return {
    extra,
    hosts: rows.length,
    duplicates: [...byMac.values()].filter((v) => v.length > 1).length,
    conflicts: [...byIp.values()].filter((v) => v > 1).length,
    missing,
    wrong,
  };
}
