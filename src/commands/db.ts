import type pg from 'pg';
import { migrate, MigrationResult, rollback } from '../db/migrate';
import { explainNotOwner } from '../db/owner';
import { preflight, refusal, warnings } from '../db/preflight';
import { readSchemaState } from '../db/schema';
import { FatalError } from '../errors';
import type { DbOptions } from '../options';
import { withClient as withDbClient } from './client';

function withClient<T>(db: DbOptions, fn: (c: pg.Client, answered: string) => Promise<T>): Promise<T> {
  return withDbClient(db, 'kea-lease-monitor-migrate', fn);
}

export interface DbCommandOutput {
  /** What `--json` prints (one line). */
  json: Record<string, unknown>;
  /** What a person reads otherwise. */
  text: string;
  /** Set when the command must exit 1 after printing (e.g. `db status` on a refused schema). */
  refusal?: string;
  /** `warning: ...` lines, for stderr. */
  warnings?: string[];
}

function describeResult(verb: string, r: MigrationResult): string {
  const prefix = r.dry_run ? `[dry run] would ${verb}` : verb === 'apply' ? 'applied' : 'reverted';
  return r.changed ? `${prefix}: ${r.steps.join(', ')}` : `nothing to ${verb}: the database is already in that state`;
}

export function dbMigrate(db: DbOptions, notify: boolean, dryRun: boolean, allowUntestedSchema = false): Promise<DbCommandOutput> {
  return withClient(db, async (c) => {
    // Only Kea's schema is checked here: a migrations version newer than ours is refused by migrate() itself.
    const p = await preflight(c, allowUntestedSchema);
    const refused = refusal(p, ['schema']);
    if (refused) throw new FatalError(refused);
    if (p.schemaVerdict.level === 'warn') process.stderr.write(`warning: ${p.schemaVerdict.message}\n`);
    const r = await migrate(c, { notify, dryRun }).catch(async (err: unknown) => {
      throw await explainNotOwner(c, 'db migrate', err);
    });
    return { json: { changed: r.changed, applied: r.steps, dry_run: r.dry_run }, text: describeResult('apply', r) };
  });
}

export function dbRollback(db: DbOptions, dropConstraint: boolean, dryRun: boolean, notifyOnly = false): Promise<DbCommandOutput> {
  return withClient(db, async (c) => {
    const r = await rollback(c, { dropConstraint, dryRun, notifyOnly }).catch(async (err: unknown) => {
      throw await explainNotOwner(c, 'db rollback', err);
    });
    return { json: { changed: r.changed, reverted: r.steps, dry_run: r.dry_run }, text: describeResult('revert', r) };
  });
}

export function dbStatus(db: DbOptions, allowUntestedSchema = false): Promise<DbCommandOutput> {
  return withClient(db, async (c, answered) => {
    const p = await preflight(c, allowUntestedSchema);
    const s = await readSchemaState(c);
    const refused = refusal(p) ?? undefined;
    // Read-only: no "changed" key. The host that answered, of the --db-host list.
    const json = {
      database: answered,
      schema_version: p.schema?.text ?? null,
      schema_check: p.schemaVerdict.level,
      migrations_version: p.migrations,
      build_migrations_version: p.buildMigrations,
      migrations_check: p.migrationsVerdict.level,
      warnings: warnings(p),
      ...(refused ? { refusal: refused } : {}),
      arbiter: s.arbiter,
      notify_trigger: s.notifyTrigger,
      notify_functions: s.notifyFunctions,
      write_path: s.arbiter.kind === 'none' ? 'fallback' : 'upsert',
    };
    const mark = (v: { level: string }) => (v.level === 'ok' ? '' : v.level === 'warn' ? ' (warning)' : ' (REFUSED)');
    const text = [
      `database:        ${answered}`,
      `schema_version:  ${p.schema?.text ?? 'none'}${mark(p.schemaVerdict)}`,
      `migrations:      ${p.migrations ?? 'none recorded'} (this build: ${p.buildMigrations})${mark(p.migrationsVerdict)}`,
      `upsert arbiter:  ${s.arbiter.kind === 'none' ? 'none (check-then-insert fallback; run `db migrate`)' : `${s.arbiter.name} (${s.arbiter.kind})`}`,
      `notify trigger:  ${s.notifyTrigger ? 'installed' : 'absent (run `db migrate --notify` for --use-database-events)'}`,
    ].join('\n');
    // A refusal is the error line itself (exit 1); warnings go to stderr beside it.
    const warned = [p.schemaVerdict, p.migrationsVerdict].filter((v) => v.level === 'warn').map((v) => `warning: ${v.message}`);
    return { json, text, refusal: refused, warnings: warned };
  });
}
