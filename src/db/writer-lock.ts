import type { ClientBase } from 'pg';
import { WRITER_LOCK } from './reservations';
import { type Fence, FencedError } from '../domain/fence';

/**
 * Runs `work` in a transaction holding the writers' advisory lock, and with a fence only while this
 * process is still the HA leader (checked after the lock, so no other monitor writes before our
 * COMMIT). On any error, BEGIN and the lock included (a lock_timeout), the transaction is rolled
 * back before the error leaves here: a client never returns to the pool inside an aborted one.
 */
export async function withWriterLock<T>(db: ClientBase, work: (db: ClientBase) => Promise<T>, fence?: Fence): Promise<T> {
  try {
    const token = fence ? fence.token() : undefined;
    if (token === null) throw new FencedError('not the active monitor');
    await db.query(`BEGIN; SELECT pg_advisory_xact_lock(${WRITER_LOCK})`);
    if (token) {
      const { rows } = await db.query<{ ok: boolean }>('SELECT kea_lm_fence_held($1, $2, $3, $4) AS ok', [
        token.lockClass,
        token.lockKey,
        token.pid,
        token.backendStart,
      ]);
      if (!rows[0]?.ok) throw new FencedError('not the active monitor');
    }
    const out = await work(db);
    await db.query('COMMIT');
    return out;
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    if (err instanceof FencedError) fence?.fenced();
    throw err;
  }
}
