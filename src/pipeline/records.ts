import { backoffDelay } from '../backoff';
import type { DiscoveryWriter, RecordedResult } from '../discovery';
import { errorMessage } from '../errors';
import { formatMac, macFileStem } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import type { RedfishInfo } from '../redfish/service-root';

interface Pending {
  mac: Buffer;
  /** null: only a probe's result, for the record already on disk. */
  result: RecordedResult | null;
  /** A Redfish probe's result not yet on disk. */
  redfish: RedfishInfo | null;
  waiters: Array<() => void>;
}

// One slice of synchronous writes lasts about this long before the event loop gets a turn (the
// database round trips of the next batch run meanwhile).
const SLICE_MS = 4;
// While reservations wait (a burst), how often a deferred writer looks again.
const DEFER_CHECK_MS = 10;

/**
 * Writes discovery records after their reservations commit, off the commit path: records wait in
 * their own queue and are written in short synchronous slices between event-loop turns, so the
 * next batch's round trips to PostgreSQL overlap with file creation instead of waiting for it.
 *
 * A lease counts as handled (its waiters run: file mode's read position) only once its record is
 * on disk. One pending record per device, kept in first-submitted order: newer news replaces
 * older in place, so records of a device are written in order and memory is bounded by the number
 * of devices waiting. A failed write (full disk, read-only filesystem, a directory it cannot
 * recreate) keeps everything and retries with backoff.
 *
 * Reservations come first: while `reservationsWaiting` says a full batch waits for the database (a
 * burst), records are not written until it has gone or the backlog reaches its limit, so the one
 * thread spends a burst committing reservations and the records drain after.
 */
export class RecordWriter {
  private readonly pending = new Map<string, Pending>();
  private slice: NodeJS.Immediate | null = null;
  private retry: NodeJS.Timeout | null = null;
  private attempt = 0;
  private outageSince: number | null = null;
  private stopped = false;
  private roomWaiters: Array<() => void> = [];
  private highWater = 0;

  constructor(
    private readonly discovery: DiscoveryWriter,
    private readonly maxDelayMs: number,
    /** Records waiting past which `whenRoom` holds the writer back (back-pressure). */
    private readonly limit: number,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly reservationsWaiting: () => boolean = () => false,
  ) {}

  /** Records still waiting for the disk. */
  get backlog(): number {
    return this.pending.size;
  }

  /** The most records ever waiting at once (for tests and diagnostics). */
  get peak(): number {
    return this.highWater;
  }

  /** Queues a record (after any older record of the same device, which it replaces). */
  submit(result: RecordedResult, waiters: Array<() => void>, redfish: RedfishInfo | null = null): void {
    const stem = macFileStem(result.lease.hwaddr);
    const queued = this.pending.get(stem);
    if (queued) {
      queued.result = result;
      if (redfish) queued.redfish = redfish;
      for (const w of waiters) queued.waiters.push(w);
    } else {
      this.pending.set(stem, { mac: result.lease.hwaddr, result, redfish, waiters });
      if (this.pending.size > this.highWater) this.highWater = this.pending.size;
    }
    this.schedule();
  }

  /** Queues a probe's result for the device's record, in order with its other records. */
  submitRedfish(mac: Buffer, redfish: RedfishInfo): void {
    const stem = macFileStem(mac);
    const queued = this.pending.get(stem);
    if (queued) queued.redfish = redfish;
    else this.pending.set(stem, { mac, result: null, redfish, waiters: [] });
    this.schedule();
  }

  /** Resolves once the backlog is under the limit: the writer takes no new batch before. */
  whenRoom(): Promise<void> | null {
    if (this.pending.size < this.limit || this.stopped) return null;
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Last attempt at what is pending; whatever is left stays unhandled (replayed or reconciled next start). */
  stop(): number {
    this.stopped = true;
    if (this.slice) clearImmediate(this.slice);
    if (this.retry) clearTimeout(this.retry);
    this.slice = null;
    this.retry = null;
    this.drain(Infinity);
    this.wakeRoom();
    return this.pending.size;
  }

  private schedule(): void {
    if (this.slice || this.retry || this.stopped) return;
    this.slice = setImmediate(() => {
      this.slice = null;
      if (this.deferred()) return;
      if (this.drain(SLICE_MS)) {
        this.attempt = 0;
        if (this.pending.size > 0) this.schedule();
      } else if (!this.stopped) {
        this.retry = setTimeout(
          () => {
            this.retry = null;
            this.schedule();
          },
          backoffDelay(this.attempt++, 250, this.maxDelayMs),
        );
      }
    });
  }

  /** True (and a look again scheduled) while a burst's reservations go first. */
  private deferred(): boolean {
    if (this.pending.size >= this.limit || !this.reservationsWaiting()) return false;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.schedule();
    }, DEFER_CHECK_MS);
    return true;
  }

  /** Writes pending records oldest first for up to `budgetMs`; false at the first failure. */
  private drain(budgetMs: number): boolean {
    const until = performance.now() + budgetMs;
    let ok = true;
    for (const [stem, p] of this.pending) {
      if (!this.tryWrite(stem, p)) {
        ok = false;
        break;
      }
      this.pending.delete(stem);
      if (performance.now() >= until) break;
    }
    this.metrics.set(...M.recordBacklog, this.pending.size);
    if (ok && this.outageSince !== null) {
      this.metrics.health.set('records', true);
      this.log.info('Writing discovery records again', { outage_seconds: (Date.now() - this.outageSince) / 1000 });
      this.outageSince = null;
    }
    if (this.pending.size < this.limit) this.wakeRoom();
    return ok;
  }

  private wakeRoom(): void {
    const waiting = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiting) w();
  }

  private tryWrite(stem: string, p: Pending): boolean {
    try {
      if (p.result) this.discovery.write(p.result, undefined, p.redfish);
      else if (p.redfish) this.discovery.writeRedfish(p.mac, p.redfish);
    } catch (err) {
      this.metrics.inc(...M.discoveryErrors);
      if (this.outageSince === null) {
        this.outageSince = Date.now();
        this.metrics.health.set('records', false, `cannot write discovery records (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
        this.log.error('Cannot write discovery records; keeping them and retrying', {
          mac: formatMac(p.mac),
          dir: this.discovery.dir,
          error: errorMessage(err),
        });
      } else {
        this.log.debug('Still cannot write discovery records', { stem, error: errorMessage(err) });
      }
      return false;
    }
    for (const done of p.waiters) done();
    return true;
  }
}
