/**
 * The monitor's own rows in `hosts`: list them, delete some of them. Every statement here selects
 * by the ownership mark in SQL (ownership.ts), so an operator's row can never be listed or deleted,
 * whatever the caller passes in.
 */
import { unlinkSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientBase } from 'pg';
import { withWriterLock } from '../db/writer-lock';
import { formatIPv4, formatMac, macFileStem, parseIPv4 } from '../lease';
import { markPrefilterSql, readMark } from '../ownership';
import { Policy, selectLease } from '../policy/select';
import { Fence } from '../domain/fence';

export interface OwnedRow {
  host_id: number;
  hwaddr: Buffer;
  mac: string;
  subnet_id: number;
  ip: string | null;
  hostname: string | null;
  /** The mark's "created" (ISO-8601). */
  created: string;
  source: string;
}

interface DbRow {
  host_id: number;
  dhcp_identifier: Buffer;
  dhcp4_subnet_id: number;
  ipv4_address: number | null;
  hostname: string | null;
  user_context: string | null;
}

const COLUMNS = 'h.host_id, h.dhcp_identifier, h.dhcp4_subnet_id, h.ipv4_address, h.hostname, h.user_context';

/** The row as the monitor's, or null when it does not carry the mark (readMark decides, never a cast in SQL). */
function toOwned(r: DbRow): OwnedRow | null {
  const mark = readMark(r.user_context);
  if (!mark) return null;
  return {
    host_id: r.host_id,
    hwaddr: r.dhcp_identifier,
    mac: formatMac(r.dhcp_identifier),
    subnet_id: Number(r.dhcp4_subnet_id),
    ip: r.ipv4_address === null ? null : formatIPv4(Number(r.ipv4_address)),
    hostname: r.hostname,
    created: mark.created,
    source: mark.source,
  };
}

function owned(rows: DbRow[]): OwnedRow[] {
  return rows.map(toOwned).filter((r): r is OwnedRow => r !== null);
}

/**
 * Every hw-address reservation carrying the mark, by host_id. SQL only narrows by text (no jsonb
 * cast, so one malformed user_context cannot fail the list); readMark decides.
 */
export async function listOwned(db: ClientBase): Promise<OwnedRow[]> {
  const { rows } = await db.query<DbRow>(
    `SELECT ${COLUMNS} FROM hosts h WHERE h.dhcp_identifier_type = 0 AND ${markPrefilterSql('h.user_context')} ORDER BY h.host_id`,
  );
  return owned(rows);
}

/** lease4 holds a live lease for the row's device (MAC and subnet): the rule the database-mode prune applies. */
const DEVICE_LIVE = `EXISTS (SELECT 1 FROM lease4 l WHERE l.hwaddr = h.dhcp_identifier AND l.subnet_id = h.dhcp4_subnet_id
                            AND l.state = 0 AND l.expire > now() AND l.valid_lifetime > 0)`;

export interface OwnedPageRow extends OwnedRow {
  /** With `live`: whether lease4 holds a live lease for this device now. */
  live?: boolean;
}

/**
 * The monitor's rows a page at a time, by host_id (keyset), so a caller holds one page however large
 * hosts is; with `live`, lease4 says per row whether the device has a live lease, in the same query.
 */
export async function* pagesOfOwned(db: ClientBase, opts: { live: boolean; pageSize?: number }): AsyncGenerator<OwnedPageRow[]> {
  const pageSize = opts.pageSize ?? 1000;
  for (let after = 0; ;) {
    const { rows } = await db.query<DbRow & { live: boolean | null }>(
      `SELECT ${COLUMNS}, ${opts.live ? DEVICE_LIVE : 'NULL::boolean'} AS live FROM hosts h
        WHERE h.host_id > $1 AND h.dhcp_identifier_type = 0 AND ${markPrefilterSql('h.user_context')}
        ORDER BY h.host_id LIMIT $2`,
      [after, pageSize],
    );
    const page: OwnedPageRow[] = [];
    for (const r of rows) {
      const row = toOwned(r);
      if (row) page.push(r.live === null ? row : { ...row, live: r.live });
    }
    if (page.length > 0) yield page;
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1].host_id;
  }
}

/** The rows a command's scope flags (--subnet-id and the selection rules) select. */
export function selectOwned(rows: OwnedRow[], scope: Policy): OwnedRow[] {
  return rows.filter(
    (r) =>
      selectLease({ hwaddr: r.hwaddr, hostname: r.hostname, address: r.ip === null ? 0 : parseIPv4(r.ip), subnetId: r.subnet_id }, scope)
        .selected,
  );
}

/**
 * Deletes these rows if they still carry the mark, under the writers' advisory lock (and the HA
 * fence, when given). With `unlessLive`, a row whose device has a live lease in lease4 at that
 * moment is kept (database mode prune: the check and the delete are one statement, so a lease
 * granted meanwhile wins). The rows are locked and read first, and readMark decides which carry
 * the mark: no jsonb cast in SQL, so one malformed row cannot fail the whole pass.
 */
export async function deleteOwned(db: ClientBase, hostIds: number[], unlessLive: boolean, fence?: Fence): Promise<OwnedRow[]> {
  if (hostIds.length === 0) return [];
  return withWriterLock(
    db,
    async () => {
      const locked = await db.query<DbRow>(`SELECT ${COLUMNS} FROM hosts h WHERE h.host_id = ANY ($1::int[]) FOR UPDATE`, [hostIds]);
      const mine = owned(locked.rows).map((r) => r.host_id);
      if (mine.length === 0) return [];
      const { rows } = await db.query<DbRow>(
        `DELETE FROM hosts h WHERE h.host_id = ANY ($1::int[])
          ${unlessLive ? `AND NOT ${DEVICE_LIVE}` : ''}
         RETURNING ${COLUMNS}`,
        [mine],
      );
      return owned(rows).sort((a, b) => a.host_id - b.host_id);
    },
    fence,
  );
}

/**
 * Removes the discovery record of each removed reservation, when the record is about the same
 * subnet (a device's record is one file per MAC, and may describe another subnet). Returns the
 * count; with dryRun, the count of those it would remove, by the same test.
 */
export function removeRecords(outputDir: string, removed: OwnedRow[], dryRun = false): number {
  let n = 0;
  for (const row of removed) {
    const path = join(outputDir, `${macFileStem(row.hwaddr)}.json`);
    let record: { subnet_id?: unknown };
    try {
      record = JSON.parse(readFileSync(path, 'utf8')) as { subnet_id?: unknown };
    } catch {
      continue; // none, or unreadable: nothing of ours to remove
    }
    if (record.subnet_id !== row.subnet_id) continue;
    if (dryRun) {
      n++;
      continue;
    }
    try {
      unlinkSync(path);
      n++;
    } catch {
      // removed meanwhile
    }
  }
  return n;
}
