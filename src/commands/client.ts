import pg from 'pg';
import { connectPrimary, describeEndpoint, describeTarget, endpoints } from '../db/connection';
import { missingKeaSchema } from '../db/kea-schema';
import { describeRunning, runningMonitors } from '../db/presence';
import { errorMessage, FatalError } from '../errors';
import type { DbOptions } from '../options';

// int8 (bigint) columns as numbers, as the write pool reads them (db/pool.ts).
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/**
 * One connection for a one-shot command; a clear FatalError when it cannot be had. `fn` also gets
 * the host that answered (user@host:port/database), which matters with several --db-host.
 */
export async function withClient<T>(
  db: DbOptions,
  applicationName: string,
  fn: (c: pg.Client, answered: string) => Promise<T>,
): Promise<T> {
  let client: pg.Client;
  let answered: string;
  try {
    // The first read-write primary of --db-host, as the daemon does.
    let index: number;
    ({ client, index } = await connectPrimary(db, applicationName));
    answered = describeEndpoint(db, endpoints(db)[index]);
  } catch (err) {
    throw new FatalError(`cannot connect to ${describeTarget(db)}: ${errorMessage(err)}`);
  }
  try {
    const missing = await missingKeaSchema(client);
    if (missing) throw new FatalError(missing);
    return await fn(client, answered);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Where a command prints: one JSON object per line with --json, text otherwise; warnings to stderr. */
export interface Output {
  json: boolean;
  write(line: string): void;
  warn(line: string): void;
  /** Resolves once what was written has been taken by the reader (back-pressure for long listings). */
  drained(): Promise<void>;
}

/**
 * Refuses (FatalError) while a monitor runs on this database, unless forced; a dry run or a forced
 * run goes ahead with a warning. Holds the presence lock on `c` from then on (db/presence.ts).
 */
export async function refuseWhileRunning(c: pg.ClientBase, command: string, flags: { dryRun: boolean; force: boolean }, out: Output) {
  const running = await runningMonitors(c);
  if (running.length === 0) return;
  const why = describeRunning(running, command);
  if (!flags.dryRun && !flags.force) throw new FatalError(why);
  out.warn(flags.dryRun ? `warning: ${why}; without --force the real run refuses` : `warning: --force: ${why}`);
}

export function emit(out: Output, obj: Record<string, unknown>, text: string): void {
  out.write(out.json ? JSON.stringify(obj) : text);
}
