/**
 * What an operator sees of each reservation outcome: one log line (or none, when it would repeat) and
 * the counters. Kept apart from the writer so the batch loop reads as a loop and this reads as a table.
 */
import type { RecordedResult } from '../discovery';
import { formatIPv4, formatMac } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import type { ReservationPolicy, ReservationResult } from '../domain/outcomes';
import { LogBudget } from './log-budget';

export interface ReportSettings {
  /** Named in the cap's warning. */
  reservationPolicy: ReservationPolicy;
  /** Counted as decisions; no outcome gets a discovery record. */
  dryRun: boolean;
}

// Outcomes decided after lease4 confirmed the lease (database mode): its subnet is real. Kea's own
// lease file (file mode) is trusted as it is; stale, superseded and failed leases were never confirmed.
const CONFIRMS_SUBNET: ReadonlySet<string> = new Set(['created', 'updated', 'unchanged', 'conflict', 'foreign', 'limit']);

// Anyone who can connect can make stale outcomes: at most this many lines about them per window.
const STALE_LOG_LIMIT = 10;
const STALE_LOG_WINDOW_MS = 10_000;

// One line per reservation written costs about 50 µs (a third of a burst's time): past this many a
// window, reservations are summed in one line instead. Each one still has its record and its count.
const WRITTEN_LOG_LIMIT = 100;
const WRITTEN_LOG_WINDOW_MS = 10_000;
/** The summary line's message (tests and log searches look for it). */
export const WRITTEN_UNLOGGED =
  'Reservations written without a line each (past the log budget; --log-level debug logs every one); each has its discovery record and is counted in reservations_total';

type LogFields = { mac: string; ip: string; hostname: string | null; subnet_id: number; host_id: number | null };

// Bounds the memory of "already logged" devices; past it, a device may be logged once more.
const REMEMBERED = 100_000;

/** Logs and counts one outcome at a time; remembers only what it already said, to say it once. */
export class OutcomeReport {
  private readonly foreignLogged = new Set<string>();
  private readonly limitWarned = new Set<number>();
  private readonly staleLogged = new Set<string>();
  private readonly staleBudget = new LogBudget(STALE_LOG_LIMIT, STALE_LOG_WINDOW_MS);
  private readonly writtenBudget = new LogBudget(WRITTEN_LOG_LIMIT, WRITTEN_LOG_WINDOW_MS);
  private heldBack = { created: 0, updated: 0 };
  private heldTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly settings: ReportSettings,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Logs and counts; returns the outcome a discovery record carries, or null when none is written.
   * `now` (epoch ms) measures the commit-to-reservation latency of a reservation that stands.
   */
  report(r: ReservationResult, now = Date.now()): RecordedResult['outcome'] | null {
    const t = r.lease.committedAt;
    if (t !== undefined && (r.outcome === 'created' || r.outcome === 'updated' || r.outcome === 'unchanged')) {
      this.metrics.observe(...M.reservationLatency, Math.max(0, now - t) / 1000, { source: r.lease.source });
    }
    const { lease, outcome } = r;
    // Formatted only for a line that is written: most reservations of a burst are not logged one by one.
    const fields = (): LogFields => ({
      mac: formatMac(lease.hwaddr),
      ip: formatIPv4(lease.address),
      hostname: lease.hostname,
      subnet_id: lease.subnetId,
      host_id: r.hostId,
    });
    if (this.settings.dryRun) return this.dryRunReport(r, fields());
    if (CONFIRMS_SUBNET.has(outcome) || lease.source === 'memfile') this.metrics.subnets.confirm(lease.subnetId);
    this.metrics.inc(...M.reservations, { result: outcome, subnet_id: lease.subnetId });
    switch (outcome) {
      case 'created':
        // Room again in this subnet: a later cap is worth a warning again.
        this.limitWarned.delete(lease.subnetId);
        this.logWritten('created', fields);
        break;
      case 'foreign':
        if (this.once(this.foreignLogged, `${formatMac(lease.hwaddr)}/${lease.subnetId}`)) {
          this.log.info('An existing reservation the monitor does not own covers this device; left untouched', fields());
        }
        break;
      case 'limit':
        if (!this.limitWarned.has(lease.subnetId)) {
          this.limitWarned.add(lease.subnetId);
          this.log.warn('Subnet has reached --max-reservations-per-subnet; new devices there are not reserved', {
            subnet_id: lease.subnetId,
            max: this.settings.reservationPolicy.maxPerSubnet,
          });
        }
        return null;
      case 'stale':
        this.reportStale(fields(), lease.subnetId);
        return null;
      case 'updated':
        this.logWritten('updated', fields);
        break;
      case 'conflict':
        this.log.warn('Reservation conflict: another identifier already holds this address; skipped', fields());
        break;
      case 'unchanged':
        if (this.log.isDebugEnabled()) this.log.debug('Reservation unchanged', fields());
        break;
      case 'superseded':
        if (this.log.isDebugEnabled()) this.log.debug('Lease superseded before it could be reserved', fields());
        return null;
      case 'failed':
        return null;
    }
    return outcome;
  }

  /** One line per reservation written, within the budget (every one at debug level); the rest summed in one line. */
  private logWritten(outcome: 'created' | 'updated', fields: () => LogFields): void {
    if (this.log.isDebugEnabled() || this.writtenBudget.take().log) {
      this.log.info(outcome === 'created' ? 'Static reservation created' : 'Static reservation updated', fields());
      return;
    }
    this.heldBack[outcome]++;
    if (!this.heldTimer) {
      this.heldTimer = setTimeout(() => this.flush(), WRITTEN_LOG_WINDOW_MS);
      this.heldTimer.unref();
    }
  }

  /** Says how many reservations the budget wrote no line for (at most once a window, and at stop). */
  flush(): void {
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    const { created, updated } = this.heldBack;
    if (created + updated === 0) return;
    this.heldBack = { created: 0, updated: 0 };
    this.log.info(WRITTEN_UNLOGGED, {
      created,
      updated,
      logged_per_window: WRITTEN_LOG_LIMIT,
      window_seconds: WRITTEN_LOG_WINDOW_MS / 1000,
    });
  }

  /** Once per device and address, within the budget; what the budget held back is summed in one line. */
  private reportStale(fields: { mac: string; ip: string }, subnetId: number): void {
    if (!this.once(this.staleLogged, `${fields.mac}/${fields.ip}/${subnetId}`)) return;
    const budget = this.staleBudget.take();
    if (budget.heldBack > 0) {
      this.log.warn('More leases had no live lease in lease4 than are logged; counted in reservations_total{result="stale"}', {
        not_logged: budget.heldBack,
        per_seconds: STALE_LOG_WINDOW_MS / 1000,
        logged: STALE_LOG_LIMIT,
      });
    }
    if (budget.log) {
      this.log.info(
        'No live lease in lease4 for this address, MAC and subnet (expired since, or a forged NOTIFY); nothing written',
        fields,
      );
    }
  }

  private dryRunReport(r: ReservationResult, fields: Record<string, unknown>): null {
    this.metrics.inc(...M.dryRun, { action: r.outcome });
    if (r.outcome === 'unchanged' || r.outcome === 'superseded') this.log.debug(`[dry run] would leave: ${r.outcome}`, fields);
    else this.log.info(`[dry run] reservation would be ${r.outcome}`, fields);
    return null;
  }

  private once(set: Set<string>, key: string): boolean {
    if (set.has(key)) return false;
    if (set.size >= REMEMBERED) set.clear();
    set.add(key);
    return true;
  }
}
