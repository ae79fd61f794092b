/**
 * Decides when lease4 is read again (database mode), and is the one module that knows both lease4
 * (through catchUp) and the discovery directory (through DiscoveryWriter.recordStems):
 * - on every LISTEN (re)connect: a catch-up that also looks for missing records (NOTIFY is not buffered);
 * - on a queue overflow: a catch-up for the reservations only;
 * - on the reconcile timer: the same as on connect, counted as a reconciliation;
 * - after a batch with a stale outcome: a catch-up, at most every 5 s.
 * The NOTIFY source tells it about its connection (ListenerEvents), the writer about outcomes
 * (OutcomeObserver); it calls neither back, so the pipeline still only flows forward.
 */
import { backoffDelay, sleep } from '../backoff';
import { classifyDbError } from '../db/errors';
import type { Database } from '../db/pool';
import { fatalFromError } from '../db/privileges';
import type { DiscoveryWriter } from '../discovery';
import type { ReservationResult } from '../domain/outcomes';
import { errorMessage } from '../errors';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import type { LeaseSink } from '../pipeline/intake';
import type { OutcomeObserver } from '../pipeline/writer';
import { catchUp } from '../sources/catch-up';
import type { LeasePrefilter } from '../sources/lease-prefilter';
import type { ListenerEvents } from '../sources/notify';
import { DecidedLeases } from './decided';

export interface ReconcilerSettings {
  subnets: ReadonlySet<number>;
  reconnectMaxDelayMs: number;
  /** Reconciliation (a catch-up that also looks for missing records) every this many ms once connected; 0: off. */
  reconcileMs: number;
  /**
   * The policy's MAC and address rules, applied in the timer's query: its passes reread the same
   * leases, and those the policy leaves out were counted as not selected when they came. null: none.
   */
  prefilter: LeasePrefilter | null;
}

// A flood of forged payloads (each one stale) costs one catch-up per this many ms, not one each.
const RECHECK_MIN_INTERVAL_MS = 5000;

export class Reconciler implements ListenerEvents, OutcomeObserver {
  private readonly stopping = new AbortController();
  private listening = false;
  private catchUpWanted = false;
  /** The catch-up wanted also checks discovery records (connect, timer), not only reservations (overflow). */
  private recordsWanted = false;
  private reconcileWanted = false;
  private reconcileTimer: NodeJS.Timeout | null = null;
  private recheckTimer: NodeJS.Timeout | null = null;
  private lastRecheck = 0;
  private catchingUp: Promise<void> | null = null;
  private readonly memory = new DecidedLeases();
  /** The queue-full warning is said once until the catch-up that recovers the dropped notifications begins. */
  private overflowWarned = false;
  private readonly fatal: Promise<never>;
  private failFatal!: (err: Error) => void;

  constructor(
    private readonly settings: ReconcilerSettings,
    private readonly db: Database,
    private readonly sink: LeaseSink,
    private readonly discovery: DiscoveryWriter,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.fatal = new Promise<never>((_, reject) => (this.failFatal = reject));
    this.fatal.catch(() => undefined);
  }

  /** Rejects when a catch-up hits an error retrying cannot fix (a privilege lost on lease4). */
  get failed(): Promise<never> {
    return this.fatal;
  }

  /**
   * A new LISTEN session: anything committed while nobody listened is found now, and records a
   * SIGKILL kept from being written. What was remembered of decided devices is forgotten: the new
   * connection re-derives everything from lease4.
   */
  connected(): void {
    this.listening = true;
    this.metrics.health.set('source', false, 'catching up with leases committed while not listening');
    this.memory.forgetAll();
    this.schedule(true);
    this.startReconcileTimer();
  }

  disconnected(): void {
    this.listening = false;
  }

  /** The queue refused a notification: find it (and any others dropped) once the queue drains. */
  overflowed(): void {
    if (!this.overflowWarned) this.log.warn('Lease queue full; dropped notifications will be caught up', { queue_size: this.sink.limit });
    this.overflowWarned = true;
    this.schedule(false);
  }

  /** OutcomeObserver: learns foreign/limit decisions; a stale outcome asks for a recheck. */
  decided(results: readonly ReservationResult[]): void {
    this.memory.learn(results);
    if (results.some((r) => r.outcome === 'stale')) this.recheck();
  }

  /** The monitor's own pruner removed reservations: subnets may have room again. */
  reservationsRemoved(): void {
    this.memory.forgetAll();
  }

  /** Idempotent; waits for a catch-up in flight to give up. */
  async stop(): Promise<void> {
    this.stopping.abort();
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    if (this.recheckTimer) clearTimeout(this.recheckTimer);
    await this.catchingUp?.catch(() => undefined);
  }

  /**
   * A write found its lease no longer live in lease4: the device may have moved while a catch-up
   * snapshot's older news replaced the newer notification in the queue. Look at lease4 again, at
   * most every 5 s, so a flood of forged payloads costs one catch-up per 5 s, not one each.
   */
  private recheck(): void {
    if (this.recheckTimer || this.stopping.signal.aborted) return;
    const wait = Math.max(0, this.lastRecheck + RECHECK_MIN_INTERVAL_MS - Date.now());
    this.recheckTimer = setTimeout(() => {
      this.recheckTimer = null;
      this.lastRecheck = Date.now();
      this.schedule(false);
    }, wait);
    this.recheckTimer.unref();
  }

  private startReconcileTimer(): void {
    if (this.reconcileTimer || this.settings.reconcileMs <= 0) return;
    this.reconcileTimer = setInterval(() => this.schedule(true, true), this.settings.reconcileMs);
    this.reconcileTimer.unref();
  }

  /**
   * Runs a catch-up; one asked for while another runs makes that one go round again from the start.
   * `records`: also queue reserved leases whose discovery record is missing (connect and timer; an
   * overflow only needs the reservations).
   */
  private schedule(records: boolean, timer = false): void {
    this.catchUpWanted = true;
    this.recordsWanted ||= records;
    this.reconcileWanted ||= timer;
    if (this.catchingUp || this.stopping.signal.aborted) return;
    this.catchingUp = this.runCatchUps().finally(() => {
      this.catchingUp = null;
    });
  }

  private async runCatchUps(): Promise<void> {
    for (let attempt = 0; this.catchUpWanted && !this.stopping.signal.aborted; attempt++) {
      const withRecords = this.recordsWanted;
      const reconcile = this.reconcileWanted;
      this.catchUpWanted = false;
      this.recordsWanted = false;
      this.reconcileWanted = false;
      this.overflowWarned = false;
      // The timer's full pass forgets the decided devices first: an operator's row removed, or
      // room made by `reservations prune` in another process, is invisible to this process, and
      // the timer bounds how long such a device waits. Overflow and stale rechecks keep the memory.
      if (reconcile) this.memory.forgetAll();
      const started = process.hrtime.bigint();
      try {
        await catchUp(this.db, this.settings.subnets, this.sink, this.log, this.metrics, {
          recordStems: withRecords ? () => this.discovery.recordStems() : null,
          decided: this.memory,
          prefilter: reconcile ? this.settings.prefilter : null,
        });
        if (reconcile) {
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          this.metrics.inc(...M.reconcileRuns);
          this.metrics.inc(...M.reconcileSeconds, {}, seconds);
          this.log.debug('Reconciliation done', { seconds });
        }
        attempt = -1;
        if (!this.catchUpWanted && this.listening && !this.stopping.signal.aborted) this.metrics.health.set('source', true);
      } catch (err) {
        this.catchUpWanted = true;
        this.recordsWanted ||= withRecords;
        this.reconcileWanted ||= reconcile;
        if (this.stopping.signal.aborted) return;
        if (classifyDbError(err) === 'fatal') {
          this.failFatal(
            await fatalFromError(err, this.db.target, this.db.options.user, () => this.db.connect(), { lease4Required: true }),
          );
          return;
        }
        this.log[attempt === 0 ? 'warn' : 'debug']('Catch-up query failed; retrying', { error: errorMessage(err) });
        await sleep(backoffDelay(attempt, 250, this.settings.reconnectMaxDelayMs), this.stopping.signal);
      }
    }
  }
}
