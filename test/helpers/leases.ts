import { existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import type pg from 'pg';

export interface TestLease {
  ip: string;
  mac: string; // "aa:bb:cc:dd:ee:ff"
  subnet?: number;
  hostname?: string | null;
  state?: number;
  validLifetime?: number;
  expire?: number; // epoch seconds
}

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The n-th test MAC: 02:00:xx:xx:xx:xx (locally administered). */
export function macFor(n: number): string {
  return ['02', '00', ...[24, 16, 8, 0].map((s) => ((n >>> s) & 255).toString(16).padStart(2, '0'))].join(':');
}

export function macHex(mac: string): string {
  return mac.replace(/:/g, '');
}

export function fileStem(mac: string): string {
  return mac.replace(/:/g, '-');
}

/** Inserts rows into lease4 the way Kea's PostgreSQL lease backend does (one INSERT per lease). */
export async function insertLeases(db: pg.ClientBase, leases: TestLease[]): Promise<void> {
  if (leases.length === 0) return;
  const now = Math.floor(Date.now() / 1000);
  await db.query(
    `INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state, user_context)
     SELECT a, decode(h, 'hex'), NULL, v, to_timestamp(e), s, false, false, n, st, NULL
       FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[]) AS t(a, h, v, e, s, n, st)`,
    [
      leases.map((l) => ipToInt(l.ip)),
      leases.map((l) => macHex(l.mac)),
      leases.map((l) => l.validLifetime ?? 3600),
      leases.map((l) => l.expire ?? now + 3600),
      leases.map((l) => l.subnet ?? 1),
      leases.map((l) => l.hostname ?? null),
      leases.map((l) => l.state ?? 0),
    ],
  );
}

/** `n` distinct leases in 10.0.0.0/8, subnet 1. */
export function manyLeases(n: number, offset = 0): TestLease[] {
  return Array.from({ length: n }, (_, i) => ({
    ip: intToIp(ipToInt('10.0.0.10') + offset + i),
    mac: macFor(offset + i + 1),
    hostname: `node-${offset + i}`,
  }));
}

export interface HostRow {
  host_id: number;
  mac: string;
  subnet: number;
  ip: string;
  hostname: string | null;
  user_context: string | null;
}

export async function reservations(db: pg.ClientBase): Promise<HostRow[]> {
  const { rows } = await db.query<{
    host_id: number;
    id: Buffer;
    subnet: string;
    ip: string;
    hostname: string | null;
    user_context: string | null;
  }>(
    `SELECT host_id, dhcp_identifier AS id, dhcp4_subnet_id AS subnet, ipv4_address AS ip, hostname, user_context
       FROM hosts WHERE dhcp_identifier_type = 0 ORDER BY host_id`,
  );
  return rows.map((r) => ({
    host_id: r.host_id,
    mac: [...r.id].map((b) => b.toString(16).padStart(2, '0')).join(':'),
    subnet: Number(r.subnet),
    ip: intToIp(Number(r.ip)),
    hostname: r.hostname,
    user_context: r.user_context,
  }));
}

/** Kea memfile CSV, format 2.1, exactly as Kea writes it. */
export const CSV_HEADER = 'address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context';

export function csvRow(l: TestLease): string {
  const now = Math.floor(Date.now() / 1000);
  const host = (l.hostname ?? '').replace(/,/g, '&#x2c');
  return (
    [l.ip, l.mac, '01:' + l.mac, l.validLifetime ?? 3600, l.expire ?? now + 3600, l.subnet ?? 1, 0, 0, host, l.state ?? 0, ''].join(',') +
    '\n'
  );
}

/** kea-lfc: merge .2 and .1 (last row per address wins; with dropReleased, rows with valid_lifetime 0 go) into .completed, then rotate it to .2. */
export function keaLfc(file: string, dropReleased = false, stopInWindow = false): void {
  const rows = new Map<string, string>();
  for (const f of [`${file}.2`, `${file}.1`]) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) if (line) rows.set(line.split(',')[0], line);
  }
  const kept = [...rows.values()].filter((l) => !dropReleased || l.split(',')[3] !== '0');
  writeFileSync(`${file}.output`, [CSV_HEADER, ...kept].join('\n') + '\n');
  renameSync(`${file}.output`, `${file}.completed`);
  // kea-lfc's fileRotate(): remove .2, remove .1, rename .completed to .2. `stopInWindow` stops
  // after the removals, where only .completed holds the merged rows.
  for (const f of [`${file}.2`, `${file}.1`]) if (existsSync(f)) unlinkSync(f);
  if (!stopInWindow) renameSync(`${file}.completed`, `${file}.2`);
}

/** An operator's reservation (not the monitor's: user_context without its mark). */
export async function insertOperatorRow(
  db: pg.ClientBase,
  r: { mac: string; ip: string; subnet?: number; hostname: string },
): Promise<void> {
  await db.query(
    `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
     VALUES (decode($1, 'hex'), 0, $2, $3, $4, '{"owner":"ops"}')`,
    [macHex(r.mac), r.subnet ?? 1, ipToInt(r.ip), r.hostname],
  );
}
