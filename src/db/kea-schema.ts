import type { ClientBase } from 'pg';

/** Kea's own schema version (table schema_version, written by kea-admin db-init / db-upgrade). */
export interface KeaSchemaVersion {
  major: number;
  minor: number;
  /** "22.2" */
  text: string;
}

/** Oldest schema the monitor supports: Kea 2.2.0. */
export const OLDEST_SCHEMA = { major: 13, minor: 0 } as const;
/** Newest schema `make test` and `make e2e` run against: Kea 3.0.4. */
export const NEWEST_TESTED_SCHEMA = { major: 29, minor: 0 } as const;
/** The Kea releases whose schemas are tested, for messages. */
export const TESTED_RELEASES = 'Kea 2.2.0 (13.0), 2.6.3 (22.2) and 3.0.4 (29.0)';

const order = (v: { major: number; minor: number }): number => v.major * 1000 + v.minor;

/** What every command says on a database without Kea's schema (`table` is the one found missing). */
export function noKeaSchemaMessage(table = 'schema_version'): string {
  return `no Kea schema here (table ${table} is missing): is --db-name Kea's database, initialised with \`kea-admin db-init pgsql\`?`;
}

/**
 * The check every command makes right after connecting, so none of them reports a raw
 * "relation ... does not exist": the refusal, or null when Kea's tables are there.
 */
export async function missingKeaSchema(db: ClientBase): Promise<string | null> {
  const { rows } = await db.query<{ table: string }>(
    `SELECT t AS table FROM unnest(ARRAY['schema_version', 'hosts']) AS t WHERE to_regclass(t) IS NULL LIMIT 1`,
  );
  return rows.length > 0 ? noKeaSchemaMessage(rows[0].table) : null;
}

/** null: no schema_version table, i.e. not a Kea database. */
export async function readKeaSchemaVersion(db: ClientBase): Promise<KeaSchemaVersion | null> {
  const { rows } = await db.query<{ present: boolean }>(`SELECT to_regclass('schema_version') IS NOT NULL AS present`);
  if (!rows[0].present) return null;
  const r = await db.query<{ version: number; minor: number | null }>(
    'SELECT version, minor FROM schema_version ORDER BY version DESC, minor DESC LIMIT 1',
  );
  if (r.rows.length === 0) return null;
  const major = Number(r.rows[0].version);
  const minor = Number(r.rows[0].minor ?? 0);
  return { major, minor, text: `${major}.${minor}` };
}

/** The gauge value: 22.2 for schema 22.2. */
export function schemaGaugeValue(v: KeaSchemaVersion): number {
  return Number(v.text);
}

export type Verdict = { level: 'ok' | 'warn' | 'refuse'; message: string };

/** Whether the monitor may run on this Kea schema; `allowUntested` turns a refusal into a warning. */
export function judgeKeaSchema(v: KeaSchemaVersion | null, allowUntested: boolean): Verdict {
  if (!v) {
    return { level: 'refuse', message: noKeaSchemaMessage() };
  }
  let problem: string | null = null;
  if (order(v) < order(OLDEST_SCHEMA)) {
    problem = `Kea schema ${v.text} is older than ${OLDEST_SCHEMA.major}.${OLDEST_SCHEMA.minor} (Kea 2.2), the oldest supported; upgrade it with \`kea-admin db-upgrade\``;
  } else if (order(v) > order(NEWEST_TESTED_SCHEMA)) {
    problem = `Kea schema ${v.text} is newer than ${NEWEST_TESTED_SCHEMA.major}.${NEWEST_TESTED_SCHEMA.minor}, the newest tested (${TESTED_RELEASES})`;
  }
  if (!problem) return { level: 'ok', message: `Kea schema ${v.text}` };
  if (allowUntested) return { level: 'warn', message: `${problem}; running anyway (--allow-untested-schema)` };
  return { level: 'refuse', message: `${problem}; refusing to start (--allow-untested-schema overrides)` };
}
