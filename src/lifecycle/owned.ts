/**
 * The monitor's own rows in `hosts`: list them, delete some of them. Every statement here selects
 * by the ownership mark in SQL (ownership.ts), so an operator's row can never be listed or deleted,
 * whatever the caller passes in.
 */
import { unlinkSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientBase } from 'pg';
import { WRITER_LOCK } from '../db/reservations';
import { formatIPv4, formatMac, macFileStem, parseIPv4 } from '../lease';
import { ownedSql, parseUserContext, OWNER_KEY } from '../ownership';
import { Policy, selectLease } from '../policy/select';

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

function toOwned(r: DbRow): OwnedRow {
  const mark = (parseUserContext(r.user_context)?.[OWNER_KEY] ?? {}) as { created?: unknown; source?: unknown };
  return {
    host_id: r.host_id,
    hwaddr: r.dhcp_identifier,
    mac: formatMac(r.dhcp_identifier),
    subnet_id: Number(r.dhcp4_subnet_id),
    ip: r.ipv4_address === null ? null : formatIPv4(Number(r.ipv4_address)),
    hostname: r.hostname,
    created: String(mark.created),
    source: String(mark.source),
  };
}

/** Every hw-address reservation carrying the mark, by host_id. */
export async function listOwned(db: ClientBase): Promise<OwnedRow[]> {
  const { rows } = await db.query<DbRow>(
    `SELECT ${COLUMNS} FROM hosts h WHERE h.dhcp_identifier_type = 0 AND ${ownedSql('h.user_context')} ORDER BY h.host_id`,
  );
  return rows.map(toOwned);
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
 * Deletes these rows if they still carry the mark, under the writers' advisory lock. With
 * `unlessLive`, a row whose device has a live lease in lease4 at that moment is kept (database
 * mode prune: the check and the delete are one statement, so a lease granted meanwhile wins).
 */
export async function deleteOwned(db: ClientBase, hostIds: number[], unlessLive: boolean): Promise<OwnedRow[]> {
  if (hostIds.length === 0) return [];
  await db.query(`BEGIN; SELECT pg_advisory_xact_lock(${WRITER_LOCK})`);
  try {
    const { rows } = await db.query<DbRow>(
      `DELETE FROM hosts h WHERE h.host_id = ANY ($1::int[]) AND ${ownedSql('h.user_context')}
        ${
          unlessLive
            ? `AND NOT EXISTS (SELECT 1 FROM lease4 l WHERE l.hwaddr = h.dhcp_identifier AND l.subnet_id = h.dhcp4_subnet_id
                          AND l.state = 0 AND l.expire > now() AND l.valid_lifetime > 0)`
            : ''
        }
       RETURNING ${COLUMNS}`,
      [hostIds],
    );
    await db.query('COMMIT');
    return rows.map(toOwned).sort((a, b) => a.host_id - b.host_id);
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
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
