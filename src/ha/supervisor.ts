import type { Server } from 'node:http';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import { Monitor } from '../monitor';
import type { Options } from '../options';
import { recordRoutes } from '../records-endpoint';
import { Leadership, LeadershipEvent } from './leadership';

/**
 * One of an HA pair (--ha-group): stands by until it holds the HA lock, then runs a fresh Monitor
 * whose writes are fenced by that lock; stops it the moment the lock is lost, and contends again.
 * Same start/stop/done shape as Monitor, so `run` treats both alike.
 */
export class HaMonitor {
  readonly metrics: Metrics;
  private readonly leadership: Leadership;
  private monitor: Monitor | null = null;
  private chain: Promise<void> = Promise.resolve();
  private server: Server | null = null;
  private stopping: Promise<void> | null = null;
  private failed = false;
  private resolveDone!: () => void;
  private rejectDone!: (err: Error) => void;
  readonly done: Promise<void>;

  constructor(
    readonly options: Options,
    private readonly log: Logger,
  ) {
    this.metrics = new Metrics(options.policy.subnetIds);
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => undefined);
    this.leadership = new Leadership(
      { db: options.db, group: options.haGroup ?? '', intervalMs: options.haInterval * 1000 },
      log.child({ module: 'ha' }),
    );
    this.leadership.onChange((e) => {
      this.chain = this.chain.then(() => this.apply(e)).catch((err: Error) => this.fail(err));
    });
  }

  async start(): Promise<void> {
    this.metrics.set(...M.haActive, 0);
    if (this.options.metricsPort > 0) {
      this.server = await this.metrics.serve(this.options.metricsPort, this.options.metricsHost, recordRoutes(this.options, this.metrics));
    }
    // A standby is healthy and ready to take over; the active member's parts report their own readiness.
    this.metrics.health.set('ha', true);
    this.log.info('Standing by for the HA lock', { group: this.options.haGroup, lock_key: this.leadership.key });
    this.leadership.start();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.leadership.stop();
      await this.chain;
      await this.monitor?.stop();
      await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
      this.server?.closeAllConnections();
      if (!this.failed) this.resolveDone();
    })();
    return this.stopping;
  }

  private async apply(e: LeadershipEvent): Promise<void> {
    if (e === 'acquired') {
      if (this.stopping || this.monitor) return;
      this.metrics.set(...M.haActive, 1);
      // The metrics endpoint stays with the supervisor, so it answers on a standby too.
      const monitor = new Monitor({ ...this.options, metricsPort: 0 }, this.log, { metrics: this.metrics, fence: this.leadership });
      this.monitor = monitor;
      monitor.done.catch((err: Error) => {
        if (this.monitor === monitor) this.fail(err);
      });
      // Database mode catches up with everything committed while standing by; file mode resumes
      // from its own saved position.
      void monitor.start().catch(() => undefined);
    } else {
      this.metrics.set(...M.haActive, 0);
      const monitor = this.monitor;
      this.monitor = null;
      await monitor?.stop();
      for (const part of ['source', 'writer', 'records']) this.metrics.health.remove(part);
    }
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.rejectDone(err);
    void this.stop();
  }
}
