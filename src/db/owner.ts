import type { ClientBase } from 'pg';
import { FatalError } from '../errors';
import { sqlState } from './errors';

/** Who owns Kea's hosts table (in the search path), from pg_class/pg_namespace; null if it cannot be read. */
export async function keaTablesOwner(db: ClientBase): Promise<string | null> {
  const { rows } = await db.query<{ owner: string }>(
    `SELECT pg_get_userbyid(c.relowner) AS owner
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = 'hosts' AND n.nspname = ANY (current_schemas(false))
      ORDER BY array_position(current_schemas(false), n.nspname) LIMIT 1`,
  );
  return rows[0]?.owner ?? null;
}

/**
 * `db migrate`/`db rollback` refused by PostgreSQL (SQLSTATE 42501): the one line naming the role
 * that must run it. Anything else is returned as it was.
 */
export async function explainNotOwner(db: ClientBase, command: string, err: unknown): Promise<unknown> {
  // migrate() names the failed step and keeps PostgreSQL's error as the cause.
  const pgError = sqlState(err) ? err : (err as { cause?: unknown } | null)?.cause;
  if (sqlState(pgError) !== '42501') return err;
  let owner: string | null = null;
  let role = '?';
  try {
    owner = await keaTablesOwner(db);
    role = (await db.query<{ role: string }>('SELECT current_user AS role')).rows[0].role;
  } catch {
    // the refusal alone still says what happened
  }
  const fix = owner ? `run it as "${owner}", the owner of Kea's tables (--db-user ${owner})` : "run it as the owner of Kea's tables";
  return new FatalError(`${command}: role "${role}" may not change Kea's schema (${(err as Error).message}, SQLSTATE 42501): ${fix}`);
}
