import type { ClientBase } from 'pg';
import type { Verdict } from './kea-schema';
import { listMigrations, Migration } from './migrations';

/** The table migration 0003 creates; one row holding the migrations version last applied. */
export const VERSION_TABLE = 'kea_lm_schema';

/** This build's migrations version: the highest migration number it embeds. */
export function buildMigrationsVersion(all: Migration[] = listMigrations()): number {
  return Math.max(0, ...all.map((m) => Number(m.id)));
}

/** null: never migrated by a build that records its version (or rolled back). */
export async function readMigrationsVersion(db: ClientBase): Promise<number | null> {
  const { rows } = await db.query<{ present: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS present`, [VERSION_TABLE]);
  if (!rows[0].present) return null;
  const r = await db.query<{ migrations: number }>(`SELECT migrations FROM ${VERSION_TABLE}`);
  return r.rows.length ? Number(r.rows[0].migrations) : null;
}

/** Records `version`; true when that changed the row. */
export async function recordMigrationsVersion(db: ClientBase, version: number): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO ${VERSION_TABLE} (migrations) VALUES ($1)
     ON CONFLICT (singleton) DO UPDATE SET migrations = EXCLUDED.migrations, applied_at = now()
       WHERE ${VERSION_TABLE}.migrations IS DISTINCT FROM EXCLUDED.migrations`,
    [version],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Newer in the database than in this build: refuse (a newer build owns it). Older or none: warn. */
export function judgeMigrations(inDb: number | null, build: number): Verdict {
  if (inDb === null) {
    return {
      level: 'warn',
      message: `no kea-lease-monitor migrations version recorded in the database (this build: ${build}); run \`kea-lease-monitor db migrate\``,
    };
  }
  if (inDb > build) {
    return {
      level: 'refuse',
      message: `the database carries kea-lease-monitor migrations ${inDb}, newer than this build's ${build}: a newer kea-lease-monitor migrated it; upgrade this one`,
    };
  }
  if (inDb < build) {
    return {
      level: 'warn',
      message: `the database carries kea-lease-monitor migrations ${inDb}, older than this build's ${build}; run \`kea-lease-monitor db migrate\``,
    };
  }
  return { level: 'ok', message: `kea-lease-monitor migrations ${inDb}` };
}
