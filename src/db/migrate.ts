import type { ClientBase } from 'pg';
import { ARBITER_MIGRATION, listMigrations, Migration, NOTIFY_MIGRATION } from './migrations';
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

async function runSteps(
  db: ClientBase,
  steps: { name: string; sql: string }[],
  dryRun: boolean,
): Promise<MigrationResult> {
  await db.query('BEGIN');
  try {
    // Kea writes lease4 all the time: never queue behind (and so block) its traffic for long.
    await db.query(`SET LOCAL lock_timeout = '10s'`);
    await db.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    const changedSteps: string[] = [];
    for (const step of steps) {
      const before = await catalogFingerprint(db);
      try {
        await db.query(step.sql);
      } catch (err) {
        throw new Error(`${step.name} failed: ${(err as Error).message}`);
      }
      if ((await catalogFingerprint(db)) !== before) changedSteps.push(step.name);
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
  const ids = req.notify ? [ARBITER_MIGRATION, NOTIFY_MIGRATION] : [ARBITER_MIGRATION];
  const steps = pick(ids, listMigrations()).map((m) => ({ name: m.name, sql: m.up }));
  return runSteps(db, steps, req.dryRun);
}

export function rollback(db: ClientBase, req: RollbackRequest): Promise<MigrationResult> {
  const ids = req.dropConstraint ? [NOTIFY_MIGRATION, ARBITER_MIGRATION] : [NOTIFY_MIGRATION];
  const steps = pick(ids, listMigrations()).map((m) => ({ name: m.name, sql: m.down }));
  return runSteps(db, steps, req.dryRun);
}
