import type { ClientBase } from 'pg';
import { FatalError } from '../errors';
import type { Lease } from '../lease';
import { CALL_NAME, CALL_TEXT, CallMode, callValues, FENCE_CLOSED } from './reservation-call';
import { CallRow, fillDecisions, fillResults } from './reservation-results';
import { FencedError, type FenceToken } from '../domain/fence';
import type { ReservationDecision, ReservationPolicy, ReservationResult } from '../domain/outcomes';

/** upsert: an arbiter exists (INSERT ... ON CONFLICT); fallback: check-then-insert under the lock. */
export type WritePath = 'upsert' | 'fallback';

export interface WriteSettings {
  /** HA: the write happens only while this session still holds the HA lock. */
  fence?: FenceToken;
  /** false: synchronous_commit = off for this transaction (database mode: lease4 stays durable). */
  durable?: boolean;
}

const NO_CAP: ReservationPolicy = { maxPerSubnet: null };

// Serialises reservation writers (several monitors on one database) so the IP-conflict check and
// the per-subnet cap hold; prune, purge and adopt take it too. kea_lm_write_reservations
// (migrations/0005) takes the same key.
export const WRITER_LOCK = 0x4b4c4e;

/** The function's name and signature, for preflight's check that `db migrate` installed it. */
export const WRITE_FUNCTION =
  'kea_lm_write_reservations(text, boolean, int, int, int, bigint, bytea[], bigint[], bigint[], bytea[], int[], boolean[], int, bytea, bytea)';

const UNDEFINED_FUNCTION = '42883';

/** The writes are one call of a function `db migrate` installs: without it, say so and stop. */
export function missingFunction(): FatalError {
  return new FatalError(
    "the reservation write function kea_lm_write_reservations is missing: run `kea-lease-monitor db migrate` (as the owner of Kea's tables) before starting the monitor",
  );
}

// Every lease goes to the function, which decides superseded itself, after lease4 has shown which
// leases are live: a forged payload for an address must not push the real lease out of the batch.
function indexed(leases: readonly Lease[]): { lease: Lease; idx: number }[] {
  return leases.map((lease, idx) => ({ lease, idx }));
}

async function call(
  db: ClientBase,
  batch: ReadonlyArray<{ lease: Lease; idx: number }>,
  mode: CallMode,
  policy: ReservationPolicy,
  s: WriteSettings,
): Promise<CallRow[]> {
  try {
    // One statement through the extended protocol, outside any explicit transaction: it commits on
    // its own, so a batch is one round trip, fenced or not.
    const { rows } = await db.query<CallRow>({
      name: CALL_NAME,
      text: CALL_TEXT,
      values: callValues(batch, { mode, maxPerSubnet: policy.maxPerSubnet, fence: s.fence, durable: s.durable ?? true }),
    });
    return rows;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === FENCE_CLOSED) throw new FencedError('not the active monitor');
    if (code === UNDEFINED_FUNCTION && /kea_lm_write_reservations/.test((err as Error).message)) throw missingFunction();
    throw err;
  }
}

/**
 * Writes reservations for a batch in one transaction (one call of kea_lm_write_reservations). Leases
 * must have distinct (hwaddr, subnet) keys (the queue guarantees it). Returns one result per lease,
 * in order.
 */
export async function writeReservations(
  db: ClientBase,
  path: WritePath,
  leases: readonly Lease[],
  policy: ReservationPolicy = NO_CAP,
  settings: WriteSettings = {},
): Promise<ReservationResult[]> {
  if (leases.length === 0) return [];
  return fillResults(leases, await call(db, indexed(leases), path === 'upsert' ? 'upsert' : 'insert', policy, settings));
}

/**
 * The decisions writeReservations would make for this batch, by the same function, read-only and
 * without the writers' lock: what `plan` prints and what `--dry-run` logs.
 */
export async function classifyReservations(
  db: ClientBase,
  leases: readonly Lease[],
  policy: ReservationPolicy = NO_CAP,
): Promise<ReservationDecision[]> {
  if (leases.length === 0) return [];
  return fillDecisions(leases, await call(db, indexed(leases), 'classify', policy, {}));
}
