import type { ClientBase } from 'pg';
import { judgeKeaSchema, KeaSchemaVersion, missingKeaSchema, readKeaSchemaVersion, Verdict } from './kea-schema';
import { buildMigrationsVersion, judgeMigrations, readMigrationsVersion } from './migrations-version';

/** What `run`, `db migrate` and `db status` check before anything else. */
export interface Preflight {
  schema: KeaSchemaVersion | null;
  /** The database's kea-lease-monitor migrations version; null when none is recorded. */
  migrations: number | null;
  buildMigrations: number;
  schemaVerdict: Verdict;
  migrationsVerdict: Verdict;
}

const PERMISSION_DENIED = '42501';

export async function preflight(db: ClientBase, allowUntestedSchema: boolean): Promise<Preflight> {
  let schema: KeaSchemaVersion | null = null;
  let schemaVerdict: Verdict;
  try {
    // The same check (and words) as every one-shot command (commands/client.ts).
    const missing = await missingKeaSchema(db);
    schema = missing ? null : await readKeaSchemaVersion(db);
    schemaVerdict = missing ? { level: 'refuse', message: missing } : judgeKeaSchema(schema, allowUntestedSchema);
  } catch (err) {
    // A least-privilege runtime role may lack it; not worth refusing a deployment that worked before.
    if ((err as { code?: string }).code !== PERMISSION_DENIED) throw err;
    schemaVerdict = {
      level: 'warn',
      message:
        "cannot read Kea's schema_version (permission denied): the Kea schema version is not checked; GRANT SELECT ON schema_version to this role",
    };
  }
  const migrations = await readMigrationsVersion(db);
  const buildMigrations = buildMigrationsVersion();
  return { schema, migrations, buildMigrations, schemaVerdict, migrationsVerdict: judgeMigrations(migrations, buildMigrations) };
}

/** The refusals, if any, as one message. */
export function refusal(p: Preflight, only: ('schema' | 'migrations')[] = ['schema', 'migrations']): string | null {
  const msgs: string[] = [];
  if (only.includes('schema') && p.schemaVerdict.level === 'refuse') msgs.push(p.schemaVerdict.message);
  if (only.includes('migrations') && p.migrationsVerdict.level === 'refuse') msgs.push(p.migrationsVerdict.message);
  return msgs.length ? msgs.join('; ') : null;
}

export function warnings(p: Preflight): string[] {
  return [p.schemaVerdict, p.migrationsVerdict].filter((v) => v.level === 'warn').map((v) => v.message);
}
