import { backoffDelay, sleep } from '../backoff';
import type { DiscoveryWriter } from '../discovery';
import { errorMessage, FatalError } from '../errors';
import { formatIPv4, formatMac, Lease, leaseKey } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import type { RedfishProber } from '../redfish/prober';
import type { ReservationBackend } from '../writers/backend';
import { notSelected } from './intake';
import { OutcomeReport } from './outcome-report';
import type { LeaseQueue, QueueEntry } from './queue';
import { RecordWriter } from './records';
import { RedfishGate } from './redfish-gate';
import type { ErrorClass } from '../domain/error-class';
import { FencedError } from '../domain/fence';
import { ReservationPolicy, ReservationResult } from '../domain/outcomes';

/** --redfish-probe: probe reserved devices; --require-redfish: reserve only Redfish devices. */
export interface RedfishSettings {
  prober: RedfishProber;
  require: boolean;
  /** The backend proves a database lease live before it writes (the SQL writer checks lease4). */
  writerChecksLive: boolean;
}

export interface WriterSettings {
  batchSize: number;
  /**
   * While leases keep coming, a batch starts at most this many ms after the previous one started,
   * so a stream of single-lease commits shares transactions. An idle writer never waits.
   */
  batchLingerMs: number;
  reconnectMaxDelayMs: number;
  /** How long a stop may keep writing what is already queued. */
  shutdownGraceMs: number;
  /** Records that may wait for the disk before the writer takes no new batch. */
  recordBacklog: number;
  /**
   * Run the backend's startup checks before the first batch (SQL in file mode: privileges; in
   * database mode the listener does it on every connect. kea-api: host_cmds loaded).
   */
  preflight: boolean;
  /** The per-subnet cap, enforced inside the write statement (the backend applies it; named here in the warning). */
  reservationPolicy: ReservationPolicy;
  /** Decide, log and count; write neither hosts nor discovery records. */
  dryRun: boolean;
  /** Told every batch's outcomes once they are decided (database mode: the reconciler). */
  observer?: OutcomeObserver;
  redfish?: RedfishSettings;
}

/**
 * Told each batch's outcomes as soon as they are decided, before their records are written. The
 * pipeline's side of the edge: whoever listens (the reconciler) depends on the writer, never the reverse.
 */
export interface OutcomeObserver {
  decided(results: readonly ReservationResult[]): void;
}

/** Thrown inside the retry loop when a stop interrupts an outage. */
class Interrupted extends Error {}

/**
 * Takes batches off the queue and writes them as reservations; their discovery records go to the
 * record writer, which writes them while the next batch is being committed. One batch is in flight
 * at a time, two in a burst (loopBatches); results are handled in order, which keeps per-device order.
 */
export class ReservationWriter {
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  private outageSince: number | null = null;
  private readonly records: RecordWriter;
  private readonly fatal: Promise<never>;
  private failFatal!: (err: Error) => void;
  private readonly gate: RedfishGate | null = null;
  private readonly report: OutcomeReport;

  constructor(
    private readonly backend: ReservationBackend,
    private readonly queue: LeaseQueue,
    discovery: DiscoveryWriter,
    private readonly settings: WriterSettings,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    // Back-pressure only past the backlog: a burst commits at the database's speed, in bounded memory.
    // Reservations go first while a full batch waits.
    this.records = new RecordWriter(
      discovery,
      settings.reconnectMaxDelayMs,
      settings.recordBacklog,
      log,
      metrics,
      () => queue.size >= settings.batchSize,
    );
    this.report = new OutcomeReport(settings, log, metrics);
    this.fatal = new Promise<never>((_, reject) => (this.failFatal = reject));
    this.fatal.catch(() => undefined);
    const redfish = settings.redfish;
    if (redfish) {
      // A probe's result goes to the device's record through the record queue, in order with its other records.
      redfish.prober.subscribe((lease, info) => this.records.submitRedfish(lease.hwaddr, info));
      if (redfish.require) this.gate = new RedfishGate(redfish.prober, queue, discovery, log);
    }
  }

  /** Rejects with a FatalError when writing cannot succeed without an operator (missing privilege). */
  get failed(): Promise<never> {
    return this.fatal;
  }

  /** The most discovery records ever waiting for the disk at once (for tests and diagnostics). */
  get recordsPeak(): number {
    return this.records.peak;
  }

  start(): void {
    this.metrics.health.set('writer', true);
    // Age of the oldest lease in the batches being written, refreshed at each scrape (an outage shows).
    this.metrics.onCollect(() => this.metrics.set(...M.sourceLag, this.lagSeconds()));
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
  private readonly inFlight = new Set<SentBatch>();

  /** Age of the oldest lease in flight, in seconds. */
  private lagSeconds(): number {
    let oldest = Infinity;
    for (const b of this.inFlight) if (b.oldest !== null && b.oldest < oldest) oldest = b.oldest;
    return oldest === Infinity ? 0 : Math.max(0, Date.now() - oldest) / 1000;
  }

  private async run(): Promise<void> {
    try {
      if (this.settings.preflight) await this.preflight();
      await this.loopBatches();
    } catch (err) {
      if (!(err instanceof Interrupted)) {
        this.failFatal(err instanceof Error ? err : new Error(String(err)));
      }
    }
    this.report.flush();
    const unwritten = this.records.stop();
    if (unwritten > 0)
      this.log.warn('Stopped with discovery records unwritten; they are replayed or reconciled at next start', { records: unwritten });
    const left = this.queue.abandonRemaining();
    if (left > 0) this.log.warn('Stopped with leases still queued; they are replayed or caught up at next start', { queued: left });
  }

  /** Waits for the backend (database, Kea), then refuses to run when it can never work. */
  private async preflight(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.backend.preflight();
        this.endOutage();
        return;
      } catch (err) {
        await this.handleError(err, err instanceof FatalError ? 'fatal' : this.backend.classify(err), attempt);
      }
    }
  }

  /** Fatal: throws FatalError. Otherwise logs (once per outage) and sleeps the backoff; Interrupted on stop. */
  private async handleError(err: unknown, kind: ErrorClass, attempt: number): Promise<void> {
    if (err instanceof FatalError) throw err;
    this.metrics.inc(...M.dbErrors, { class: kind });
    if (kind === 'fatal') throw await this.backend.fatal(err);
    this.beginOutage(err, kind);
    // Stopping during an outage: what is unwritten is replayed (file) or caught up (database) next start.
    if (this.stopping.signal.aborted) throw new Interrupted();
    // A read-only host: the next connect moves on to another host at once.
    await sleep(
      kind === 'read-only' && attempt === 0 ? 0 : backoffDelay(attempt, 250, this.settings.reconnectMaxDelayMs),
      this.stopping.signal,
    );
    if (this.stopping.signal.aborted) throw new Interrupted();
  }

  /**
   * One batch at a time, except in a burst: while a full batch waits and the backend serialises
   * writes, the next batch is sent before the last one's results are handled, so the monitor's own
   * work overlaps the database's. Two batches in flight never share a device, and results are
   * handled in order; an attempt sent ahead that fails is retried only after the batch before it.
   */
  private async loopBatches(): Promise<void> {
    let ahead: SentBatch | null = null;
    try {
      for (;;) {
        if (ahead === null) {
          if (!this.stopping.signal.aborted) await Promise.race([this.queue.whenNotEmpty(), this.stopped]);
          const room = this.records.whenRoom();
          if (room && !this.stopping.signal.aborted) await Promise.race([room, this.stopped]);
          await this.linger();
        } else if (!this.maySendAhead(ahead)) {
          await this.settle(ahead);
          ahead = null;
          continue;
        }
        if (this.stopping.signal.aborted && (this.queue.size === 0 || Date.now() > this.deadline)) break;
        const entries = this.queue.take(this.settings.batchSize);
        this.lastBatchSize = entries.length;
        this.metrics.set(...M.queueDepth, this.queue.size);
        if (entries.length === 0) continue;
        const selected = entries.filter((e) => this.admitted(e));
        if (selected.length === 0) continue;
        if (ahead && sharesDevice(ahead.entries, selected)) {
          await this.settle(ahead);
          ahead = null;
        }
        const sent = this.send(selected);
        if (ahead) await this.settle(ahead);
        ahead = sent;
      }
    } finally {
      // Never leave an attempt running behind a stop or a fatal error.
      await Promise.allSettled([...this.inFlight].map((b) => b.first));
      this.inFlight.clear();
    }
  }

  /**
   * A full batch is waiting, the backend keeps concurrent writes in order, and the records would
   * still have room once the batch in flight adds its own: the backlog's bound is unchanged.
   */
  private maySendAhead(ahead: SentBatch): boolean {
    return (
      this.backend.serialisesWrites &&
      !this.stopping.signal.aborted &&
      this.queue.size >= this.settings.batchSize &&
      this.records.backlog + ahead.entries.length < this.settings.recordBacklog
    );
  }

  /** Starts a batch's first attempt; settle() handles its result (or retries it) in order. */
  private send(entries: QueueEntry[]): SentBatch {
    const started = process.hrtime.bigint();
    const first = this.backend.write(entries.map((e) => e.lease));
    // Handled in settle(); a rejection before then is not unhandled.
    first.catch(() => undefined);
    const batch = { entries, first, started, oldest: oldestCommit(entries) };
    this.inFlight.add(batch);
    return batch;
  }

  private async settle(batch: SentBatch): Promise<void> {
    try {
      this.finish(
        batch.entries,
        await this.writeWithRetry(
          batch.entries.map((e) => e.lease),
          batch,
        ),
      );
    } finally {
      this.inFlight.delete(batch);
    }
  }

  private lastBatchAt = -Infinity;
  private lastBatchSize = 0;

  /**
   * Waits out the rest of the linger since the previous batch began, unless a full batch is ready,
   * and only after a batch of more than one lease: a lone lease means the writer keeps up one by one,
   * and waiting would only add latency.
   */
  private async linger(): Promise<void> {
    const wait = this.lastBatchAt + this.settings.batchLingerMs - performance.now();
    if (wait > 0 && this.lastBatchSize > 1 && this.queue.size < this.settings.batchSize && !this.stopping.signal.aborted) {
      await Promise.race([sleep(wait), this.queue.whenAtLeast(this.settings.batchSize), this.stopped]);
    }
    this.lastBatchAt = performance.now();
  }

  private readonly stopped = new Promise<void>((resolve) =>
    this.stopping.signal.addEventListener('abort', () => resolve(), { once: true }),
  );

  /**
   * Retries transient errors forever on fresh connections (logging once per outage); every wait is
   * bounded by the connection's timeouts, and a client that failed is discarded, never reused.
   * Isolates bad data; a fatal error (missing privilege) throws FatalError.
   */
  private async writeWithRetry(leases: Lease[], sent?: SentBatch): Promise<ReservationResult[]> {
    for (let attempt = 0; ; attempt++) {
      const started = attempt === 0 && sent ? sent.started : process.hrtime.bigint();
      try {
        const results = await (attempt === 0 && sent ? sent.first : this.backend.write(leases));
        this.metrics.inc(...M.batches);
        this.metrics.observe(...M.batchDuration, Number(process.hrtime.bigint() - started) / 1e9);
        this.metrics.set(...M.lastWrite, Date.now() / 1000);
        this.endOutage();
        return results;
      } catch (err) {
        if (err instanceof FencedError) {
          // HA: another monitor may be active now; drop the batch (its catch-up or replay covers it).
          this.log.warn('Not the active monitor any more; batch dropped', { leases: leases.length });
          throw new Interrupted();
        }
        const kind = err instanceof FatalError ? 'fatal' : this.backend.classify(err);
        if (kind === 'data') {
          this.metrics.inc(...M.dbErrors, { class: 'data' });
          return this.isolate(leases, err);
        }
        await this.handleError(err, kind, attempt);
      }
    }
  }

  /** Splits a batch PostgreSQL refused until the refused leases are alone; writes the rest. */
  private async isolate(leases: Lease[], err: unknown): Promise<ReservationResult[]> {
    if (leases.length === 1) {
      const l = leases[0];
      this.metrics.inc(...M.failed);
      this.log.error('PostgreSQL refused this lease; skipped', {
        mac: formatMac(l.hwaddr),
        ip: formatIPv4(l.address),
        subnet_id: l.subnetId,
        error: errorMessage(err),
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
      this.metrics.health.set('writer', false, `cannot write reservations (${kind} error)`);
    } else {
      this.log.debug('Still cannot write reservations', { error: errorMessage(err) });
    }
  }

  private endOutage(): void {
    if (this.outageSince !== null) {
      this.metrics.health.set('writer', true);
      this.log.info('Writing reservations again', { outage_seconds: (Date.now() - this.outageSince) / 1000 });
      this.outageSince = null;
    }
  }

  // A lease counts as handled (its waiters run) only once its discovery record is on disk.
  private finish(entries: QueueEntry[], results: ReservationResult[]): void {
    if (results.length > 0) this.settings.observer?.decided(results);
    const now = Date.now();
    results.forEach((r, i) => {
      const waiters = entries[i].waiters;
      const outcome = this.report.report(r, now);
      if (outcome) this.records.submit({ ...r, outcome }, waiters, this.probeAfterWrite(r));
      else for (const done of waiters) done();
    });
  }

  /**
   * --redfish-probe: a reservation just written proves the lease live (lease file, or the SQL
   * writer's lease4 check): its device is probed in the background, unless a result still stands.
   * Returns what is known of the device, for its record.
   */
  private probeAfterWrite(r: ReservationResult): ReturnType<RedfishProber['result']> {
    const redfish = this.settings.redfish;
    if (!redfish) return null;
    if (r.outcome === 'created' || r.outcome === 'updated' || r.outcome === 'unchanged') {
      redfish.prober.request(r.lease, redfish.writerChecksLive || r.lease.source === 'memfile');
    }
    return redfish.prober.result(r.lease);
  }

  /**
   * --require-redfish: a lease the intake selected waits for its device's probe (held, not lost);
   * one held or refused is counted by reason, logged at debug, and done with here.
   */
  private admitted(entry: QueueEntry): boolean {
    const { lease } = entry;
    const verdict = this.gate ? this.gate.admit(lease) : 'reserve';
    if (verdict === 'reserve') return true;
    notSelected(lease, verdict, this.metrics, this.log);
    for (const done of entry.waiters) done();
    return false;
  }
}

/** A batch whose first attempt is under way. */
interface SentBatch {
  entries: QueueEntry[];
  first: Promise<ReservationResult[]>;
  started: bigint;
  /** committedAt of its oldest lease, epoch ms. */
  oldest: number | null;
}

function sharesDevice(a: readonly QueueEntry[], b: readonly QueueEntry[]): boolean {
  const keys = new Set(a.map((e) => leaseKey(e.lease)));
  return b.some((e) => keys.has(leaseKey(e.lease)));
}

function oldestCommit(entries: QueueEntry[]): number | null {
  let oldest: number | null = null;
  for (const e of entries) {
    const t = e.lease.committedAt;
    if (t !== undefined && (oldest === null || t < oldest)) oldest = t;
  }
  return oldest;
}
