import type { ClientBase } from 'pg';
import { FatalError } from '../errors';
import {
  ARBITER_MIGRATION,
  listMigrations,
  Migration,
  NOTIFY_MIGRATION,
  VERSION_MIGRATION,
  WRITER_FUNCTIONS_MIGRATION,
  WRITER_MIGRATION,
} from './migrations';
import { buildMigrationsVersion, judgeMigrations, readMigrationsVersion, recordMigrationsVersion } from './migrations-version';
import { catalogFingerprint } from './schema';

export interface MigrateRequest {
  /** Also install the lease4 NOTIFY trigger. */
  notify: boolean;
  /** Run everything, report what would change, then roll back. */
  dryRun: boolean;
}

export interface RollbackRequest {
  /** Also drop the project's own unique constraint (never Kea's index). */
  dropConstraint: boolean;
  /** Drop only the NOTIFY trigger and its functions; the migrations' version stays recorded. */
  notifyOnly?: boolean;
  dryRun: boolean;
}

export interface MigrationResult {
  changed: boolean;
  /** Names of the migrations (or rollbacks) that changed the catalog. */
  steps: string[];
  dry_run: boolean;
}

// One advisory lock so two hosts migrating one database take turns instead of failing.
const MIGRATION_LOCK = 0x4b4c4d; // "KLM"

interface Step {
  name: string;
  sql: string;
  /** Runs after sql inside the same transaction; true when it changed something. */
  after?: (db: ClientBase) => Promise<boolean>;
}

async function runSteps(db: ClientBase, steps: Step[], dryRun: boolean): Promise<MigrationResult> {
  await db.query('BEGIN');
  try {
    // Kea writes lease4 all the time: never queue behind (and so block) its traffic for long.
    await db.query(`SET LOCAL lock_timeout = '10s'`);
    await db.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    // Under the lock: a newer build's migrations are not this build's to redo or undo.
    const verdict = judgeMigrations(await readMigrationsVersion(db), buildMigrationsVersion());
    if (verdict.level === 'refuse') throw new FatalError(verdict.message);
    const changedSteps: string[] = [];
    for (const step of steps) {
      const before = await catalogFingerprint(db);
      let changed: boolean;
      try {
        await db.query(step.sql);
        changed = (await step.after?.(db)) ?? false;
      } catch (err) {
        throw new Error(`${step.name} failed: ${(err as Error).message}`, { cause: err });
      }
      if (changed || (await catalogFingerprint(db)) !== before) changedSteps.push(step.name);
    }
    // A run that changed nothing is rolled back too: nothing to commit, no WAL, no lock held longer.
    await db.query(dryRun || changedSteps.length === 0 ? 'ROLLBACK' : 'COMMIT');
    return { changed: changedSteps.length > 0, steps: changedSteps, dry_run: dryRun };
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

function pick(ids: string[], all: Migration[]): Migration[] {
  return ids.map((id) => {
    const m = all.find((x) => x.id === id);
    if (!m) throw new Error(`migration ${id} is missing from this build`);
    return m;
  });
}

export function migrate(db: ClientBase, req: MigrateRequest): Promise<MigrationResult> {
  // The version migration goes last: it records that everything before it is in place.
  const ids = req.notify
    ? [ARBITER_MIGRATION, NOTIFY_MIGRATION, WRITER_FUNCTIONS_MIGRATION, WRITER_MIGRATION, VERSION_MIGRATION]
    : [ARBITER_MIGRATION, WRITER_FUNCTIONS_MIGRATION, WRITER_MIGRATION, VERSION_MIGRATION];
  const version = buildMigrationsVersion();
  const steps: Step[] = pick(ids, listMigrations()).map((m) => ({
    name: m.name,
    sql: m.up,
    // The version row is written last, by the migration that made its table.
    after: m.id === VERSION_MIGRATION ? (c) => recordMigrationsVersion(c, version) : undefined,
  }));
  return runSteps(db, steps, req.dryRun);
}

/** Undoes in reverse order; the migrations version goes first, so a half-undone database says so. */
export function rollback(db: ClientBase, req: RollbackRequest): Promise<MigrationResult> {
  // --notify-only is what a switch back to file mode runs on every deploy: it must leave the
  // version table alone, or each deploy would revert and re-apply it (never idempotent).
  const ids = req.notifyOnly
    ? [NOTIFY_MIGRATION]
    : req.dropConstraint
      ? [VERSION_MIGRATION, WRITER_MIGRATION, WRITER_FUNCTIONS_MIGRATION, NOTIFY_MIGRATION, ARBITER_MIGRATION]
      : [VERSION_MIGRATION, WRITER_MIGRATION, WRITER_FUNCTIONS_MIGRATION, NOTIFY_MIGRATION];
  const steps = pick(ids, listMigrations()).map((m) => ({ name: m.name, sql: m.down }));
  return runSteps(db, steps, req.dryRun);
}
