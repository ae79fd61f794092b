import type { PoolClient } from 'pg';
import { classifyDbError, isMissingArbiter } from '../db/errors';
import type { Database } from '../db/pool';
import { checkPrivileges, fatalFromError, PrivilegeNeeds } from '../db/privileges';
import { classifyReservations, missingFunction, WRITE_FUNCTION, WritePath, writeReservations } from '../db/reservations';
import { findArbiter } from '../db/schema';
import type { FatalError } from '../errors';
import type { Lease } from '../lease';
import type { Logger } from '../logger';
import type { ReservationBackend } from './backend';
import { ErrorClass } from '../domain/error-class';
import { type Fence, FencedError } from '../domain/fence';
import { outcomeOfAction, ReservationPolicy, ReservationResult } from '../domain/outcomes';

/** HA: proves inside each writing transaction that this process is still the active monitor. */
export type WriteFence = Fence;

/** The hosts table, written with SQL (src/db/reservations.ts); a thin adapter over writeReservations. */
export class SqlBackend implements ReservationBackend {
  readonly kind = 'sql';
  // kea_lm_write_reservations takes the writers' advisory lock before it reads or writes hosts.
  readonly serialisesWrites = true;
  private path: WritePath | null = null;

  constructor(
    private readonly db: Database,
    private readonly settings: {
      /** Privileges checked by preflight (and named when one is refused). */
      needs: PrivilegeNeeds;
      /** The per-subnet cap, enforced inside the write statement. */
      reservationPolicy: ReservationPolicy;
      /** Decide only: classify, write nothing. */
      dryRun: boolean;
      /** --ha-group: every write proves leadership in its own transaction. */
      fence?: WriteFence;
      /**
       * false in database mode: the monitor's own commits skip the WAL flush (synchronous_commit =
       * off), since lease4 stays durable and every reconnect re-derives reservations from it.
       */
      durable: boolean;
    },
    private readonly log: Logger,
  ) {}

  /** Connects and refuses to run without the privileges the writes need. */
  async preflight(): Promise<void> {
    let client: PoolClient | undefined;
    try {
      client = await this.db.connect();
      await checkPrivileges(client, this.settings.needs);
      await requireWriteFunction(client);
      await this.choosePath(client);
      client.release();
    } catch (err) {
      client?.release(err instanceof Error ? err : true);
      throw err;
    }
  }

  async write(leases: readonly Lease[]): Promise<ReservationResult[]> {
    let client: PoolClient | undefined;
    // A checked-out client whose server goes away emits 'error'; unhandled, that would kill the
    // process. The failed query rejects as well, which is where it is dealt with.
    const ignore = (): void => undefined;
    try {
      client = await this.db.connect();
      client.on('error', ignore);
      const fence = this.settings.fence?.token();
      if (fence === null) throw new FencedError('not the active monitor');
      const path = this.path ?? (await this.choosePath(client));
      const results = this.settings.dryRun
        ? (await classifyReservations(client, leases, this.settings.reservationPolicy)).map((d) => ({
            lease: d.lease,
            outcome: outcomeOfAction(d.action),
            hostId: d.hostId,
          }))
        : await writeReservations(client, path, leases, this.settings.reservationPolicy, { fence, durable: this.settings.durable });
      client.off('error', ignore);
      client.release();
      return results;
    } catch (err) {
      client?.release(err instanceof FencedError ? undefined : err instanceof Error ? err : true);
      if (err instanceof FencedError) this.settings.fence?.fenced();
      throw err;
    }
  }

  classify(err: unknown): ErrorClass {
    const kind = classifyDbError(err);
    if (kind !== 'data') this.db.noteError(err);
    if (isMissingArbiter(err) || kind === 'config') this.path = null;
    return kind;
  }

  fatal(err: unknown): Promise<FatalError> {
    return fatalFromError(err, this.db.target, this.db.options.user, () => this.db.connect(), this.settings.needs);
  }

  private async choosePath(client: PoolClient): Promise<WritePath> {
    const arbiter = await findArbiter(client);
    const path: WritePath = arbiter.kind === 'none' ? 'fallback' : 'upsert';
    if (path !== this.path) {
      if (path === 'upsert') this.log.info('Reservations use one upsert per batch', { arbiter: arbiter.name });
      else
        this.log.warn(
          'No unique index on (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id): using check-then-insert; `db migrate` adds one',
        );
    }
    this.path = path;
    return path;
  }
}

/** Refuses to start before `db migrate` installed the write function. */
async function requireWriteFunction(client: PoolClient): Promise<void> {
  const { rows } = await client.query<{ present: boolean }>('SELECT to_regprocedure($1) IS NOT NULL AS present', [WRITE_FUNCTION]);
  if (!rows[0].present) throw missingFunction();
}
