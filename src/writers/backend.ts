import type { ErrorClass } from '../db/errors';
import type { ReservationResult } from '../db/reservations';
import type { Lease } from '../lease';

export type WriterKind = 'sql' | 'kea-api';

/**
 * Where reservations go: Kea's hosts table through SQL, or Kea itself through host_cmds. The
 * pipeline's writer owns batching, retries, outage logging and the discovery records; a backend
 * only writes one batch and says how a failure should be treated.
 */
export interface ReservationBackend {
  readonly kind: WriterKind;
  /**
   * Startup checks. Resolves when the backend is usable or when `signal` aborts; rejects with a
   * FatalError when it can never work (e.g. host_cmds not loaded). Unreachable is not fatal.
   */
  prepare(signal: AbortSignal): Promise<void>;
  /**
   * Writes one batch (distinct hwaddr+subnet keys) and returns one result per lease, in order.
   * Throws when the batch as a whole could not be written; classify() says what to do then.
   */
  write(leases: readonly Lease[]): Promise<ReservationResult[]>;
  /** transient: retry after a backoff; data: isolate the lease at fault; config: retry slowly. */
  classify(err: unknown): ErrorClass;
}
