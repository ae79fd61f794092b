import type pg from 'pg';
import { describeTarget } from '../db/connection';
import { migrate, MigrationResult, rollback } from '../db/migrate';
import { readSchemaState } from '../db/schema';
import type { DbOptions } from '../options';
import { withClient as withDbClient } from './client';

function withClient<T>(db: DbOptions, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  return withDbClient(db, 'kea-lease-monitor-migrate', fn);
}

export interface DbCommandOutput {
  /** What `--json` prints (one line). */
  json: Record<string, unknown>;
  /** What a person reads otherwise. */
  text: string;
}

function describeResult(verb: string, r: MigrationResult): string {
  const prefix = r.dry_run ? `[dry run] would ${verb}` : verb === 'apply' ? 'applied' : 'reverted';
  return r.changed ? `${prefix}: ${r.steps.join(', ')}` : `nothing to ${verb}: the database is already in that state`;
}

export function dbMigrate(db: DbOptions, notify: boolean, dryRun: boolean): Promise<DbCommandOutput> {
  return withClient(db, async (c) => {
    const r = await migrate(c, { notify, dryRun });
    return { json: { changed: r.changed, applied: r.steps, dry_run: r.dry_run }, text: describeResult('apply', r) };
  });
}

export function dbRollback(db: DbOptions, dropConstraint: boolean, dryRun: boolean): Promise<DbCommandOutput> {
  return withClient(db, async (c) => {
    const r = await rollback(c, { dropConstraint, dryRun });
    return { json: { changed: r.changed, reverted: r.steps, dry_run: r.dry_run }, text: describeResult('revert', r) };
  });
}

export function dbStatus(db: DbOptions): Promise<DbCommandOutput> {
  return withClient(db, async (c) => {
    const s = await readSchemaState(c);
    const json = {
      changed: false,
      arbiter: s.arbiter,
      notify_trigger: s.notifyTrigger,
      notify_functions: s.notifyFunctions,
      write_path: s.arbiter.kind === 'none' ? 'fallback' : 'upsert',
    };
    const text = [
      `database:        ${describeTarget(db)}`,
      `upsert arbiter:  ${s.arbiter.kind === 'none' ? 'none (check-then-insert fallback; run `db migrate`)' : `${s.arbiter.name} (${s.arbiter.kind})`}`,
      `notify trigger:  ${s.notifyTrigger ? 'installed' : 'absent (run `db migrate --notify` for --use-database-events)'}`,
    ].join('\n');
    return { json, text };
  });
}
