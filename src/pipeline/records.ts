import { backoffDelay } from '../backoff';
import type { DiscoveryWriter, RecordedResult } from '../discovery';
import { errorMessage } from '../errors';
import { formatMac, macFileStem } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';

interface Pending {
  result: RecordedResult;
  waiters: Array<() => void>;
}

/**
 * Writes discovery records after their reservations commit, and keeps the ones it could not write
 * (full disk, read-only filesystem, a directory it cannot recreate) until it can: a lease counts
 * as handled, and its waiters (file mode's read position) are released, only once its record is
 * on disk. One pending record per device: newer news replaces older, so memory is bounded by the
 * number of devices.
 */
export class RecordWriter {
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private outageSince: number | null = null;
  private stopped = false;

  constructor(
    private readonly discovery: DiscoveryWriter,
    private readonly maxDelayMs: number,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  /** Records still waiting for the disk. */
  get backlog(): number {
    return this.pending.size;
  }

  /** Writes now, or keeps it for the next retry (after any older record of the same device). */
  submit(result: RecordedResult, waiters: Array<() => void>): void {
    const stem = macFileStem(result.lease.hwaddr);
    const queued = this.pending.get(stem);
    if (queued) {
      queued.result = result;
      queued.waiters.push(...waiters);
      return;
    }
    if (this.pending.size === 0 && this.tryWrite(stem, { result, waiters })) return;
    this.pending.set(stem, { result, waiters });
    this.metrics.set(...M.recordBacklog, this.pending.size);
    this.schedule();
  }

  /** Last attempt at what is pending; whatever is left stays unhandled (replayed or reconciled next start). */
  stop(): number {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.drain();
    return this.pending.size;
  }

  private tryWrite(stem: string, p: Pending): boolean {
    try {
      this.discovery.write(p.result);
    } catch (err) {
      this.metrics.inc(...M.discoveryErrors);
      if (this.outageSince === null) {
        this.outageSince = Date.now();
        this.metrics.health.set('records', false, `cannot write discovery records (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
        this.log.error('Cannot write discovery records; keeping them and retrying', {
          mac: formatMac(p.result.lease.hwaddr),
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

  /** Writes pending records oldest first; stops at the first failure. */
  private drain(): boolean {
    for (const [stem, p] of this.pending) {
      if (!this.tryWrite(stem, p)) return false;
      this.pending.delete(stem);
    }
    this.metrics.set(...M.recordBacklog, 0);
    if (this.outageSince !== null) {
      this.metrics.health.set('records', true);
      this.log.info('Writing discovery records again', { outage_seconds: (Date.now() - this.outageSince) / 1000 });
      this.outageSince = null;
    }
    this.attempt = 0;
    return true;
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        if (!this.drain()) {
          this.attempt++;
          this.metrics.set(...M.recordBacklog, this.pending.size);
          this.schedule();
        }
      },
      backoffDelay(this.attempt, 250, this.maxDelayMs),
    );
  }
}
