import pg from 'pg';
import type { Logger } from '../logger';
import type { DbOptions } from '../options';
import { clientConfig } from './connection';

// int8 (bigint) columns: lease addresses and subnet ids fit a double exactly; parse them as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** The pool for reservation writes and catch-up queries; the listener has its own client. */
export function createWritePool(db: DbOptions, size: number, log: Logger): pg.Pool {
  const pool = new pg.Pool({ ...clientConfig(db, 'kea-lease-monitor'), max: size, idleTimeoutMillis: 30_000 });
  // An idle client losing its server must not crash the process; the next checkout reconnects.
  pool.on('error', (err) => log.debug('Idle database connection closed', { error: err.message }));
  return pool;
}
