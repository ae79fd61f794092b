import pg from 'pg';
import { connectPrimary, describeTarget } from '../db/connection';
import { missingKeaSchema } from '../db/kea-schema';
import { errorMessage, FatalError } from '../errors';
import type { DbOptions } from '../options';

// int8 (bigint) columns as numbers, as the write pool reads them (db/pool.ts).
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** One connection for a one-shot command; a clear FatalError when it cannot be had. */
export async function withClient<T>(db: DbOptions, applicationName: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  let client: pg.Client;
  try {
    // The first read-write primary of --db-host, as the daemon does.
    ({ client } = await connectPrimary(db, applicationName));
  } catch (err) {
    throw new FatalError(`cannot connect to ${describeTarget(db)}: ${errorMessage(err)}`);
  }
  try {
    const missing = await missingKeaSchema(client);
    if (missing) throw new FatalError(missing);
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Where a command prints: one JSON object per line with --json, text otherwise. */
export interface Output {
  json: boolean;
  write(line: string): void;
}

export function emit(out: Output, obj: Record<string, unknown>, text: string): void {
  out.write(out.json ? JSON.stringify(obj) : text);
}
