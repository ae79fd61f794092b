import type { Pool, PoolClient } from 'pg';
import { backoffDelay, sleep } from '../backoff';
import { classifyDbError, isMissingArbiter } from '../db/errors';
import { FencedError, ReservationResult, WritePath, writeReservations } from '../db/reservations';
import { findArbiter } from '../db/schema';
import type { DiscoveryWriter } from '../discovery';
import { errorMessage } from '../errors';
import { formatIPv4, formatMac, Lease } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import type { LeaseQueue, QueueEntry } from './queue';

export interface WriterSettings {
  batchSize: number;
  reconnectMaxDelayMs: number;
  /** How long a stop may keep writing what is already queued. */
  shutdownGraceMs: number;
}

/** HA: proves inside each writing transaction that this process is still the active monitor. */
export interface WriteFence {
  /** A statement returning one row with boolean "ok"; null when not active (then nothing is written). */
  guard(): string | null;
  /** Called when the fence was found closed. */
  fenced(): void;
}

/** Thrown inside the retry loop when a stop interrupts an outage. */
class Interrupted extends Error {}

/**
 * Takes batches off the queue, writes them as reservations, then writes the discovery records.
 * One batch is in flight at a time, which keeps per-device order.
 */
export class ReservationWriter {
  private path: WritePath | null = null;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  private outageSince: number | null = null;

  constructor(
    private readonly pool: Pool,
    private readonly queue: LeaseQueue,
    private readonly discovery: DiscoveryWriter,
    private readonly settings: WriterSettings,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly fence?: WriteFence,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Finishes the batch in flight, then what is queued until the grace period ends. Idempotent. */
  async stop(): Promise<void> {
    if (!this.stopping.signal.aborted) {
      this.deadline = Date.now() + this.settings.shutdownGraceMs;
      this.stopping.abort();
      this.queue.close();
    }
    await this.loop;
  }

  private deadline = Infinity;

  private async run(): Promise<void> {
    for (;;) {
      if (!this.stopping.signal.aborted) await Promise.race([this.queue.whenNotEmpty(), this.stopped]);
      if (this.stopping.signal.aborted && (this.queue.size === 0 || Date.now() > this.deadline)) break;
      const entries = this.queue.take(this.settings.batchSize);
      this.metrics.set(...M.queueDepth, this.queue.size);
      if (entries.length === 0) continue;
      let results: ReservationResult[];
      try {
        results = await this.writeWithRetry(entries.map((e) => e.lease));
      } catch (err) {
        if (err instanceof Interrupted) break;
        throw err;
      }
      this.finish(entries, results);
    }
    const left = this.queue.abandonRemaining();
    if (left > 0) this.log.warn('Stopped with leases still queued; they are replayed or caught up at next start', { queued: left });
  }

  private readonly stopped = new Promise<void>((resolve) =>
    this.stopping.signal.addEventListener('abort', () => resolve(), { once: true }),
  );

  private async choosePath(client: PoolClient): Promise<WritePath> {
    const arbiter = await findArbiter(client);
    const path: WritePath = arbiter.kind === 'none' ? 'fallback' : 'upsert';
    if (path !== this.path) {
      if (path === 'upsert') this.log.info('Reservations use one upsert per batch', { arbiter: arbiter.name });
      else this.log.warn('No unique index on (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id): using check-then-insert; `db migrate` adds one');
    }
    this.path = path;
    return path;
  }

  /** Retries transient and configuration errors forever (logging once per outage); isolates bad data. */
  private async writeWithRetry(leases: Lease[]): Promise<ReservationResult[]> {
    for (let attempt = 0; ; attempt++) {
      const started = process.hrtime.bigint();
      let client: PoolClient | undefined;
      // A checked-out client whose server goes away emits 'error'; unhandled, that would kill the
      // process. The failed query rejects as well, which is where it is dealt with.
      const ignore = (): void => undefined;
      try {
        client = await this.pool.connect();
        client.on('error', ignore);
        const guard = this.fence?.guard();
        if (guard === null) throw new FencedError('not the active monitor');
        const path = this.path ?? (await this.choosePath(client));
        const results = await writeReservations(client, path, leases, guard);
        client.off('error', ignore);
        client.release();
        this.metrics.inc(...M.batches);
        this.metrics.inc(...M.batchSeconds, {}, Number(process.hrtime.bigint() - started) / 1e9);
        this.endOutage();
        return results;
      } catch (err) {
        client?.release(err instanceof FencedError ? undefined : err instanceof Error ? err : true);
        if (err instanceof FencedError) {
          // Another monitor may be active now: drop the batch; its catch-up or replay covers it.
          this.fence?.fenced();
          this.log.warn('Not the active monitor any more; batch dropped', { leases: leases.length });
          throw new Interrupted();
        }
        const kind = classifyDbError(err);
        this.metrics.inc(...M.dbErrors, { class: kind });
        if (kind === 'data') return this.isolate(leases, err);
        if (isMissingArbiter(err) || kind === 'config') this.path = null;
        this.beginOutage(err, kind);
        // Stopping during an outage: what is unwritten is replayed (file) or caught up (database) next start.
        if (this.stopping.signal.aborted) throw new Interrupted();
        await sleep(backoffDelay(attempt, 250, this.settings.reconnectMaxDelayMs), this.stopping.signal);
        if (this.stopping.signal.aborted) throw new Interrupted();
      }
    }
  }

  /** Splits a batch PostgreSQL refused until the refused leases are alone; writes the rest. */
  private async isolate(leases: Lease[], err: unknown): Promise<ReservationResult[]> {
    if (leases.length === 1) {
      const l = leases[0];
      this.metrics.inc(...M.failed);
      this.log.error('PostgreSQL refused this lease; skipped', {
        mac: formatMac(l.hwaddr), ip: formatIPv4(l.address), subnet_id: l.subnetId, error: errorMessage(err),
      });
      return [{ lease: l, outcome: 'failed', hostId: null }];
    }
    const mid = Math.ceil(leases.length / 2);
    return [...(await this.writeWithRetry(leases.slice(0, mid))), ...(await this.writeWithRetry(leases.slice(mid)))];
  }

  private beginOutage(err: unknown, kind: string): void {
    if (this.outageSince === null) {
      this.outageSince = Date.now();
      this.log.error('Cannot write reservations; retrying with backoff', { error: errorMessage(err), class: kind });
    } else {
      this.log.debug('Still cannot write reservations', { error: errorMessage(err) });
    }
  }

  private endOutage(): void {
    if (this.outageSince !== null) {
      this.log.info('Writing reservations again', { outage_seconds: (Date.now() - this.outageSince) / 1000 });
      this.outageSince = null;
    }
  }

  private finish(entries: QueueEntry[], results: ReservationResult[]): void {
    for (const r of results) this.record(r);
    for (const e of entries) for (const done of e.waiters) done();
  }

  private record(r: ReservationResult): void {
    const { lease, outcome } = r;
    this.metrics.inc(...M.reservations, { result: outcome });
    const fields = {
      mac: formatMac(lease.hwaddr), ip: formatIPv4(lease.address), hostname: lease.hostname,
      subnet_id: lease.subnetId, host_id: r.hostId,
    };
    switch (outcome) {
      case 'created':
        this.log.info('Static reservation created', fields);
        break;
      case 'updated':
        this.log.info('Static reservation updated', fields);
        break;
      case 'conflict':
        this.log.warn('Reservation conflict: another identifier already holds this address; skipped', fields);
        break;
      case 'unchanged':
        this.log.debug('Reservation unchanged', fields);
        break;
      case 'superseded':
        this.log.debug('Lease superseded before it could be reserved', fields);
        return;
      case 'failed':
        return;
    }
    try {
      this.discovery.write({ ...r, outcome });
    } catch (err) {
      this.metrics.inc(...M.discoveryErrors);
      this.log.error('Cannot write discovery record', { mac: fields.mac, error: errorMessage(err) });
    }
  }
}
