/**
 * Probes devices' Redfish service roots in the background: bounded concurrency, a short timeout per
 * attempt, retries with backoff for a window (a BMC takes its lease before its web server is up),
 * one probe per device at a time. Nothing waits for it: results go to the subscribers (the record
 * writer, the --require-redfish gate). It only ever connects to the address of a lease it was
 * handed as live; a lease not yet proven live (a NOTIFY) is checked against lease4 first.
 */
import { setMaxListeners } from 'node:events';
import { Agent } from 'node:https';
import { createSecureContext } from 'node:tls';
import { backoffDelay } from '../backoff';
import { errorMessage } from '../errors';
import { formatIPv4, formatMac, Lease, macFileStem } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import { probeAttempt } from './attempt';
import type { GetSettings } from './https-get';
import type { RedfishInfo } from './service-root';

export interface ProberSettings extends Omit<GetSettings, 'secureContext' | 'verify' | 'agent'> {
  /** PEM of the CA to verify against (--redfish-ca); null: no verification. */
  ca: string | null;
  /** How long a device is retried before its probe ends absent or unreachable. */
  retryForMs: number;
  /** Attempts in flight at once. */
  concurrency: number;
  /** Attempts started per second at most (--redfish-rate). */
  attemptsPerSecond: number;
}

/** Whether lease4 holds this lease now; null when there is no database to ask. */
export type LiveCheck = (lease: Lease) => Promise<boolean>;

export type ProbeListener = (lease: Lease, info: RedfishInfo) => void;

interface Known {
  info: RedfishInfo;
  address: number;
  at: number;
}

/** One device's probe: data only, so a burst of 50,000 devices costs a map entry each, not a pending call. */
interface Job {
  stem: string;
  /** The newest lease of the device: an attempt connects to its address. */
  lease: Lease;
  /** Known live (lease file, or the SQL writer's check); otherwise lease4 is asked before any connect. */
  verified: boolean;
  /** Attempts made so far. */
  attempts: number;
  /** Epoch ms past which no retry starts; set at the first attempt. */
  deadline: number | null;
}

// A present result stands this long for the same address; a negative one for the retry window.
const PRESENT_STANDS_MS = 6 * 3600_000;
const REMEMBERED = 100_000;
/** Devices waiting for or in a probe; past it new ones are skipped until their next lease. */
export const MAX_PROBES = 65_536;

export class RedfishProber {
  private readonly jobs = new Map<string, Job>();
  /** Jobs due for their next step, oldest first (a device is in it at most once). */
  private readonly ready = new Set<Job>();
  private readonly known = new Map<string, Known>();
  private readonly listeners: ProbeListener[] = [];
  private readonly stopping = new AbortController();
  private active = 0;
  private fullWarned = false;
  /** Steps in flight: at most `concurrency`. */
  private readonly running = new Set<Promise<void>>();
  private readonly get: GetSettings;
  private readonly gapMs: number;
  private nextAttemptAt = 0;
  /** Backoff and pacing waits, resolved at once by stop(). */
  private readonly waits = new Map<NodeJS.Timeout, () => void>();

  constructor(
    private readonly settings: ProberSettings,
    private readonly liveCheck: LiveCheck | null,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    const { ca, timeoutMs, maxBytes, port } = settings;
    this.get = {
      timeoutMs,
      maxBytes,
      port,
      verify: ca !== null,
      secureContext: createSecureContext(ca !== null ? { ca } : {}),
      agent: new Agent({ keepAlive: false, maxCachedSessions: 0 }),
    };
    // An attempt costs up to a millisecond or two of CPU even when refused (TLS socket setup): paced,
    // a burst of devices that refuse leaves the writer its share of the event loop.
    this.gapMs = 1000 / settings.attemptsPerSecond;
    // One abort listener per attempt in flight (https-get.ts); no more than the concurrency.
    setMaxListeners(settings.concurrency + 8, this.stopping.signal);
  }

  subscribe(fn: ProbeListener): void {
    this.listeners.push(fn);
  }

  /** Probes in progress (waiting for a slot, verifying, or retrying). */
  get pending(): number {
    return this.jobs.size;
  }

  /** What the last probe of this device found, if it is remembered. */
  result(lease: Pick<Lease, 'hwaddr'>): RedfishInfo | null {
    return this.known.get(macFileStem(lease.hwaddr))?.info ?? null;
  }

  /** A result found elsewhere (the device's record on disk), as if this process had probed it then. */
  remember(lease: Pick<Lease, 'hwaddr' | 'address'>, info: RedfishInfo): void {
    const stem = macFileStem(lease.hwaddr);
    if (this.known.has(stem)) return;
    if (this.known.size >= REMEMBERED) this.known.delete(this.known.keys().next().value as string);
    this.known.set(stem, { info, address: lease.address, at: Date.parse(info.probed_at) });
  }

  /** True while a probe of this device is under way. */
  probing(lease: Pick<Lease, 'hwaddr'>): boolean {
    return this.jobs.has(macFileStem(lease.hwaddr));
  }

  /** Whether a remembered result still stands for this lease (no new probe would start). */
  settled(lease: Pick<Lease, 'hwaddr' | 'address'>, now = Date.now()): boolean {
    const k = this.known.get(macFileStem(lease.hwaddr));
    if (!k || k.address !== lease.address) return false;
    return now - k.at < (k.info.status === 'present' ? PRESENT_STANDS_MS : this.settings.retryForMs);
  }

  /**
   * Probes the lease's device unless a probe is running (it then uses this, newer, address) or a
   * result still stands. `verified`: the lease is known live (lease file, or the SQL writer's check);
   * otherwise lease4 is asked first, and without a database nothing is probed.
   */
  request(lease: Lease, verified: boolean): void {
    if (this.stopping.signal.aborted) return;
    const stem = macFileStem(lease.hwaddr);
    const job = this.jobs.get(stem);
    if (job) {
      // Only a lease known live may change where the probe connects.
      if (verified) {
        job.lease = lease;
        job.verified = true;
      }
      return;
    }
    if (this.settled(lease)) return;
    if (!verified && this.liveCheck === null) return;
    if (this.jobs.size >= MAX_PROBES) {
      if (!this.fullWarned)
        this.log.warn('Too many Redfish probes pending; new devices are probed at their next lease', { max: MAX_PROBES });
      this.fullWarned = true;
      return;
    }
    const fresh: Job = { stem, lease, verified, attempts: 0, deadline: null };
    this.jobs.set(stem, fresh);
    this.ready.add(fresh);
    this.pump();
  }

  /** Abandons every probe (nothing is recorded for them); resolves when none is running. */
  async stop(): Promise<void> {
    this.stopping.abort();
    for (const [timer, resolve] of this.waits) {
      clearTimeout(timer);
      resolve();
    }
    this.waits.clear();
    this.ready.clear();
    await Promise.all([...this.running]);
    this.jobs.clear();
  }

  /** Starts the steps due, as many as the concurrency allows. */
  private pump(): void {
    while (this.active < this.settings.concurrency && this.ready.size > 0 && !this.stopping.signal.aborted) {
      const job = this.ready.values().next().value as Job;
      this.ready.delete(job);
      this.active++;
      const step = this.step(job).finally(() => {
        this.running.delete(step);
        this.active--;
        this.pump();
      });
      this.running.add(step);
    }
  }

  /** One step of a device's probe: the lease4 check if it is not proven live, then one paced attempt. */
  private async step(job: Job): Promise<void> {
    const signal = this.stopping.signal;
    try {
      if (!job.verified) {
        if (!(await this.verify(job.lease))) {
          // A lease proven live may have come in meanwhile; it is probed on its own next step.
          if (job.verified && !signal.aborted) this.ready.add(job);
          else this.jobs.delete(job.stem);
          return;
        }
        // Only a lease known live replaces the job's lease, so the one connected to is proven live now.
        job.verified = true;
      }
      job.deadline ??= Date.now() + this.settings.retryForMs;
      await this.pace();
      if (signal.aborted) return;
      const lease = job.lease;
      const started = process.hrtime.bigint();
      const r = await probeAttempt(formatIPv4(lease.address), this.get, signal);
      if (signal.aborted) return;
      this.metrics.observe(...M.redfishProbeDuration, Number(process.hrtime.bigint() - started) / 1e9);
      const delay = backoffDelay(job.attempts++, 1000, 30_000);
      if (r.final || Date.now() + delay > job.deadline) {
        const status = r.final ? r.status : r.giveUp;
        const root = r.final ? r.root : null;
        const info: RedfishInfo = {
          status,
          version: root?.version ?? null,
          uuid: root?.uuid ?? null,
          vendor: root?.vendor ?? null,
          product: root?.product ?? null,
          probed_at: new Date().toISOString(),
        };
        this.finish(job, lease, info, r.why);
        return;
      }
      this.log.debug('Redfish probe: no answer yet; retrying', { mac: formatMac(lease.hwaddr), ip: formatIPv4(lease.address), why: r.why });
      // Waits as data (a timer), holding no slot: the job is due again after the backoff.
      this.later(delay, () => {
        if (!signal.aborted && this.jobs.get(job.stem) === job) {
          this.ready.add(job);
          this.pump();
        }
      });
    } catch (err) {
      this.log.warn('Redfish probe failed', { mac: formatMac(job.lease.hwaddr), error: errorMessage(err) });
      this.jobs.delete(job.stem);
    }
  }

  /** A lease not proven live: lease4 must hold it (address, MAC, subnet, unexpired) before any connect. */
  private async verify(lease: Lease): Promise<boolean> {
    try {
      if (this.stopping.signal.aborted) return false;
      const live = await (this.liveCheck as LiveCheck)(lease);
      if (!live) {
        this.metrics.inc(...M.redfishProbes, { result: 'not-live' });
        this.log.info('Not probing for Redfish: lease4 holds no such live lease (expired, or a forged NOTIFY)', {
          mac: formatMac(lease.hwaddr),
          ip: formatIPv4(lease.address),
          subnet_id: lease.subnetId,
        });
      }
      return live;
    } catch (err) {
      this.log.warn('Cannot check the lease before a Redfish probe; it is probed at its next lease', {
        mac: formatMac(lease.hwaddr),
        error: errorMessage(err),
      });
      return false;
    }
  }

  private finish(job: Job, lease: Lease, info: RedfishInfo, why: string): void {
    const { stem } = job;
    this.metrics.inc(...M.redfishProbes, { result: info.status });
    if (this.known.size >= REMEMBERED) this.known.delete(this.known.keys().next().value as string);
    this.known.delete(stem);
    this.known.set(stem, { info, address: lease.address, at: Date.now() });
    this.log.info(info.status === 'present' ? 'Redfish service found' : `Redfish probe: ${info.status}`, {
      mac: formatMac(lease.hwaddr),
      ip: formatIPv4(lease.address),
      attempts: job.attempts,
      why,
      ...(info.status === 'present' ? { version: info.version, uuid: info.uuid, vendor: info.vendor, product: info.product } : {}),
    });
    this.jobs.delete(stem);
    for (const fn of this.listeners) fn(lease, info);
  }

  /** Waits for this attempt's turn: attempts start at least gapMs apart. */
  private pace(): Promise<void> {
    const now = Date.now();
    const at = Math.max(now, this.nextAttemptAt);
    this.nextAttemptAt = at + this.gapMs;
    return at - now >= 1 ? new Promise((resolve) => this.later(at - now, resolve)) : Promise.resolve();
  }

  /** Runs `fn` after `ms`, or at once when stop() comes first. */
  private later(ms: number, fn: () => void): void {
    if (this.stopping.signal.aborted) return fn();
    const timer = setTimeout(() => {
      this.waits.delete(timer);
      fn();
    }, ms);
    this.waits.set(timer, fn);
  }
}
