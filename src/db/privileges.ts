import type { ClientBase } from 'pg';
import { FatalError } from '../errors';

/** What a feature needs beyond the daemon's INSERT/UPDATE/SELECT: prune/purge delete rows. */
export interface PrivilegeNeeds {
  deleteHosts?: boolean;
  /** Database mode reads lease4 (catch-up); lease4 must then exist. */
  lease4Required?: boolean;
}

interface Missing {
  privilege: string;
  kind: 'table' | 'sequence';
  object: string;
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/**
 * Checks, before any work, that the connected role may do what the monitor does: SELECT, INSERT,
 * UPDATE (and DELETE when asked) on hosts, USAGE on its host_id sequence, SELECT on lease4. Throws
 * one FatalError naming every missing privilege, the role, and the GRANT that fixes it.
 */
export async function checkPrivileges(db: ClientBase, needs: PrivilegeNeeds = {}): Promise<void> {
  const { rows } = await db.query<{
    role: string;
    hosts: boolean;
    seq: string | null;
    lease4: boolean;
    h_select: boolean | null;
    h_insert: boolean | null;
    h_update: boolean | null;
    h_delete: boolean | null;
    s_usage: boolean | null;
    l_select: boolean | null;
  }>(`
    SELECT current_user AS role,
           to_regclass('hosts') IS NOT NULL AS hosts,
           pg_get_serial_sequence('hosts', 'host_id') AS seq,
           to_regclass('lease4') IS NOT NULL AS lease4,
           CASE WHEN to_regclass('hosts') IS NOT NULL THEN has_table_privilege('hosts', 'SELECT') END AS h_select,
           CASE WHEN to_regclass('hosts') IS NOT NULL THEN has_table_privilege('hosts', 'INSERT') END AS h_insert,
           CASE WHEN to_regclass('hosts') IS NOT NULL THEN has_table_privilege('hosts', 'UPDATE') END AS h_update,
           CASE WHEN to_regclass('hosts') IS NOT NULL THEN has_table_privilege('hosts', 'DELETE') END AS h_delete,
           CASE WHEN pg_get_serial_sequence('hosts', 'host_id') IS NOT NULL
                THEN has_sequence_privilege(pg_get_serial_sequence('hosts', 'host_id'), 'USAGE') END AS s_usage,
           CASE WHEN to_regclass('lease4') IS NOT NULL THEN has_table_privilege('lease4', 'SELECT') END AS l_select`);
  const r = rows[0];
  const role = r.role;
  if (!r.hosts)
    throw new FatalError(
      `table hosts does not exist in this database (role "${role}"): is --db-name Kea's database, with its schema (kea-admin db-init)?`,
    );
  if (needs.lease4Required && !r.lease4)
    throw new FatalError(`table lease4 does not exist in this database (role "${role}"): is --db-name Kea's lease database?`);
  const missing: Missing[] = [];
  const table = (ok: boolean | null, privilege: string, object: string): void => {
    if (ok === false) missing.push({ privilege, kind: 'table', object });
  };
  table(r.h_select, 'SELECT', 'hosts');
  table(r.h_insert, 'INSERT', 'hosts');
  table(r.h_update, 'UPDATE', 'hosts');
  if (needs.deleteHosts) table(r.h_delete, 'DELETE', 'hosts');
  if (r.seq && r.s_usage === false) missing.push({ privilege: 'USAGE', kind: 'sequence', object: r.seq });
  table(r.l_select, 'SELECT', 'lease4');
  if (missing.length > 0) throw new FatalError(describeMissing(role, missing));
}

/** `role "klm" lacks INSERT on table hosts: GRANT INSERT ON hosts TO klm` (several joined by "; "). */
export function describeMissing(role: string, missing: Missing[]): string {
  const groups = new Map<string, Missing[]>();
  for (const m of missing) groups.set(`${m.kind} ${m.object}`, [...(groups.get(`${m.kind} ${m.object}`) ?? []), m]);
  const lacks: string[] = [];
  const grants: string[] = [];
  for (const ms of groups.values()) {
    const privs = ms.map((m) => m.privilege).join(', ');
    const { kind, object } = ms[0];
    lacks.push(`${privs} on ${kind} ${object}`);
    grants.push(`GRANT ${privs} ON ${kind === 'sequence' ? 'SEQUENCE ' : ''}${object} TO ${quoteIdent(role)}`);
  }
  return `role "${role}" lacks ${lacks.join(' and ')}: ${grants.join('; ')}`;
}

/** A refusal seen while running (SQLSTATE 42501) that the catalog check could not pin down. */
export function describeRefusal(role: string, err: unknown): string {
  return `role "${role}" was refused by PostgreSQL: ${(err as Error).message} (SQLSTATE 42501): grant the privilege and restart`;
}

/**
 * Turns an error classified 'fatal' (db/errors.ts) into the one line the process exits with. A
 * 42501 is explained by the catalog check when it can be (which privilege, which object, the GRANT).
 */
export async function fatalFromError(
  err: unknown,
  target: string,
  user: string,
  recheck: () => Promise<ClientBase & { release?: (e?: Error | boolean) => void }>,
  needs: PrivilegeNeeds = {},
): Promise<FatalError> {
  const code = (err as { code?: unknown }).code;
  const msg = (err as Error).message;
  if (code === '42501') {
    let client: (ClientBase & { release?: (e?: Error | boolean) => void }) | undefined;
    try {
      client = await recheck();
      await checkPrivileges(client, needs);
      const { rows } = await client.query<{ role: string }>('SELECT current_user AS role');
      return new FatalError(describeRefusal(rows[0].role, err));
    } catch (e) {
      if (e instanceof FatalError) return e;
      return new FatalError(describeRefusal(user, err));
    } finally {
      client?.release?.();
    }
  }
  if (code === '28P01' || code === '28000') {
    return new FatalError(
      `cannot log in to ${target} as "${user}": ${msg} (SQLSTATE ${code}): fix the password (KEA_DB_PASSWORD, --db-password-file or the "db-password" credential), the role or pg_hba.conf`,
    );
  }
  if (code === '3D000') return new FatalError(`${msg} on ${target} (SQLSTATE 3D000): fix --db-name`);
  return new FatalError(`${msg} (SQLSTATE ${String(code)}) in ${target}: is this Kea's database with its schema (kea-admin db-init)?`);
}
