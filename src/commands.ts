import pg from 'pg';
import { connectPrimary, describeTarget } from './db/connection';
import { migrate, MigrationResult, rollback } from './db/migrate';
import { readSchemaState } from './db/schema';
import { errorMessage, FatalError } from './errors';
import { HaMonitor } from './ha/supervisor';
import { flushLogger, Logger } from './logger';
import { Monitor } from './monitor';
import type { DbOptions, Options } from './options';
import { handleStopSignals } from './signals';

/** `run`: until a signal stops it. Resolves with the exit code. */
export async function runMonitor(options: Options, log: Logger): Promise<number> {
  const monitor = options.haGroup !== null ? new HaMonitor(options, log) : new Monitor(options, log);
  const release = handleStopSignals(() => monitor.stop(), log);
  try {
    // A stop may come before the source is up (database unreachable at boot): done settles then.
    await Promise.race([monitor.start(), monitor.done]);
    await monitor.done;
    return 0;
  } catch (err) {
    log.error(err instanceof FatalError ? err.message : `Monitor failed: ${errorMessage(err)}`);
    return 1;
  } finally {
    release();
    await flushLogger(log);
  }
}

async function withClient<T>(db: DbOptions, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  let client: pg.Client;
  try {
    // The first read-write primary of --db-host, as the daemon does.
    ({ client } = await connectPrimary(db, 'kea-lease-monitor-migrate'));
  } catch (err) {
    throw new FatalError(`cannot connect to ${describeTarget(db)}: ${errorMessage(err)}`);
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
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
