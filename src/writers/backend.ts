import type { FatalError } from '../errors';
import type { Lease } from '../lease';
import type { ErrorClass } from '../domain/error-class';
import type { ReservationResult } from '../domain/outcomes';

export type WriterKind = 'sql' | 'kea-api';

/**
 * Where reservations go: Kea's hosts table through SQL, or Kea itself through host_cmds. The
 * pipeline's writer owns batching, retries, outage logging and the discovery records; a backend
 * makes one attempt at a time and says how a failure should be treated.
 */
export interface ReservationBackend {
  readonly kind: WriterKind;
  /**
   * Concurrent write() calls commit one after the other, each seeing the one before (the SQL
   * writer's advisory lock), so the writer may send the next batch before handling the last one's.
   */
  readonly serialisesWrites: boolean;
  /** One attempt at the startup checks; throws FatalError when retrying cannot help. */
  preflight(): Promise<void>;
  /**
   * Writes one batch (distinct hwaddr+subnet keys) and returns one result per lease, in order.
   * Throws when the batch as a whole could not be written; classify() says what to do then.
   */
  write(leases: readonly Lease[]): Promise<ReservationResult[]>;
  /** Called once per failed attempt. transient/read-only/config: retry; data: isolate; fatal: stop. */
  classify(err: unknown): ErrorClass;
  /** The one line the process exits with, for an error classified 'fatal'. */
  fatal(err: unknown): Promise<FatalError>;
}
