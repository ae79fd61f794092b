import type { Server } from 'node:http';
import { describeTarget } from './db/connection';
import { Database } from './db/pool';
import { SchemaGuard } from './db/schema-guard';
import { DiscoveryWriter } from './discovery';
import { errorMessage, fatalLine, markReported } from './errors';
import { KeaConfigWatch } from './kea/config-watch';
import { prune } from './lifecycle/pruner';
import type { Logger } from './logger';
import { M, Metrics } from './metrics';
import { recordRoutes } from './records-endpoint';
import { describeOptions, Options } from './options';
import { LeaseIntake } from './pipeline/intake';
import { LeaseQueue } from './pipeline/queue';
import { ReservationWriter } from './pipeline/writer';
import { compilePolicy, describePolicy, Policy } from './policy/select';
import { leasePrefilter } from './sources/lease-prefilter';
import { redfishProber } from './redfish/setup';
import type { RedfishProber } from './redfish/prober';
import { MemfileSource } from './sources/memfile';
import { NotifySource } from './sources/notify';
import { Reconciler } from './reconcile/reconciler';
import type { ReservationBackend } from './writers/backend';
import { VERSION } from './version';
import { KeaApiBackend } from './writers/kea-api';
import { SqlBackend, WriteFence } from './writers/sql';

/** How long past --shutdown-grace a stop may take before it logs what it is waiting for. */
const OVERDUE_STOP_MARGIN_MS = 2000;

/** What an HA supervisor (src/ha) shares with the monitor it runs. */
export interface MonitorDeps {
  metrics?: Metrics;
  fence?: WriteFence;
}

/**
 * Wires one lease source to the pipeline: source -> intake -> queue -> reservation writer -> discovery
 * records. Database mode adds the reconciler beside it: the source reports its connection and the
 * writer its outcomes to it, and it feeds catch-ups into the intake; nothing calls back upstream.
 * start() and stop() are idempotent; stop() finishes the batch in flight.
 */
export class Monitor {
  readonly metrics: Metrics;
  readonly queue: LeaseQueue;
  private readonly intake: LeaseIntake;
  /** null with the kea-api writer in file mode: nothing talks to PostgreSQL then. */
  private readonly db: Database | null;
  private readonly backend: ReservationBackend;
  private readonly writer: ReservationWriter;
  private readonly discovery: DiscoveryWriter;
  private readonly memfile: MemfileSource | null = null;
  private readonly notify: NotifySource | null = null;
  /** Database mode: decides when lease4 is read again (connect, overflow, timer, stale outcomes). */
  private readonly reconciler: Reconciler | null = null;
  private server: Server | null = null;
  private readonly schemaGuard: SchemaGuard | null;
  private readonly guardStop = new AbortController();
  private readonly policy: Policy;
  /** --kea-control-socket: kea-dhcp4's configuration, read to refuse reservations it would not honour. */
  private readonly keaConfig: KeaConfigWatch | null;
  private readonly prober: RedfishProber | null;
  private pruneTimer: NodeJS.Timeout | null = null;
  private readonly fence: WriteFence | undefined;
  private started: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private resolveDone!: () => void;
  private rejectDone!: (err: Error) => void;
  /** Settles when the monitor has stopped: resolves after stop(), rejects on a fatal error. */
  readonly done: Promise<void>;

  constructor(
    readonly options: Options,
    private readonly log: Logger,
    deps: MonitorDeps = {},
  ) {
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => undefined);
    this.fence = deps.fence;
    const subnets = new Set(options.subnetIds);
    this.metrics = deps.metrics ?? new Metrics(options.policy.subnetIds);
    this.policy = compilePolicy(options.policy);
    this.queue = new LeaseQueue(options.queueSize);
    // --prune-unseen-for also needs DELETE on hosts: checked before the first batch.
    const sqlNeeds =
      options.pruneUnseenFor !== null
        ? { deleteHosts: true, lease4Required: options.useDatabaseEvents }
        : options.useDatabaseEvents
          ? null
          : {};
    const reservationPolicy = { maxPerSubnet: options.maxReservationsPerSubnet };
    const db =
      options.writer === 'sql' || options.useDatabaseEvents
        ? new Database(options.db, options.poolSize, log.child({ module: 'db' }))
        : null;
    this.db = db;
    this.backend =
      options.writer === 'kea-api'
        ? new KeaApiBackend(
            {
              socketPath: options.keaControlSocket ?? '',
              concurrency: options.keaApiConcurrency,
              timeoutMs: options.keaApiTimeout * 1000,
              // Database mode: each NOTIFY is checked against lease4 before Kea is asked anything.
              db,
            },
            log.child({ module: 'kea-api' }),
            this.metrics,
          )
        : new SqlBackend(
            db as Database,
            {
              needs: sqlNeeds ?? {},
              reservationPolicy,
              dryRun: options.dryRun,
              fence: deps.fence,
              // Database mode: lease4 is the durable truth, re-read on every reconnect (docs/design.md).
              durable: !options.useDatabaseEvents,
            },
            log.child({ module: 'writer' }),
          );
    this.keaConfig =
      options.keaControlSocket === null
        ? null
        : new KeaConfigWatch(
            {
              socketPath: options.keaControlSocket,
              timeoutMs: options.keaApiTimeout * 1000,
              intervalMs: options.keaConfigInterval * 1000,
              writer: options.writer,
            },
            log.child({ module: 'kea-config' }),
            this.metrics,
          );
    this.discovery = new DiscoveryWriter(options.outputDir);
    // Selection before the queue: a lease that will not be reserved takes no slot.
    this.intake = new LeaseIntake(
      this.queue,
      { policy: this.policy, keaGate: this.keaConfig ?? undefined },
      log.child({ module: 'selection' }),
      this.metrics,
    );
    if (options.useDatabaseEvents) {
      this.reconciler = new Reconciler(
        {
          subnets,
          reconnectMaxDelayMs: options.reconnectMaxDelay * 1000,
          reconcileMs: options.reconcileInterval * 1000,
          prefilter: leasePrefilter(this.policy),
        },
        db as Database,
        this.intake,
        this.discovery,
        log.child({ module: 'listener' }),
        this.metrics,
      );
    }
    this.prober = redfishProber(options.redfish, db, log.child({ module: 'redfish' }), this.metrics);
    this.writer = new ReservationWriter(
      this.backend,
      this.queue,
      this.discovery,
      {
        batchSize: options.batchSize,
        batchLingerMs: options.batchLinger,
        reconnectMaxDelayMs: options.reconnectMaxDelay * 1000,
        shutdownGraceMs: options.shutdownGrace * 1000,
        recordBacklog: options.recordBacklog,
        // SQL in database mode without pruning: the listener checks privileges on every connect.
        preflight: options.writer === 'kea-api' || sqlNeeds !== null,
        reservationPolicy,
        dryRun: options.dryRun,
        ...(this.reconciler ? { observer: this.reconciler } : {}),
        ...(this.prober
          ? { redfish: { prober: this.prober, require: options.redfish.require, writerChecksLive: options.writer === 'sql' } }
          : {}),
      },
      log.child({ module: 'writer' }),
      this.metrics,
    );
    // No database at all (file mode + Kea API writer): no Kea schema to check.
    this.schemaGuard = db
      ? new SchemaGuard(db, options.allowUntestedSchema, log.child({ module: 'db' }), this.metrics, options.reconnectMaxDelay * 1000)
      : null;
    if (options.useDatabaseEvents) {
      this.notify = new NotifySource(
        {
          subnets,
          heartbeatMs: options.heartbeatInterval * 1000,
          reconnectMaxDelayMs: options.reconnectMaxDelay * 1000,
        },
        db as Database,
        this.intake,
        this.reconciler as Reconciler,
        log.child({ module: 'listener' }),
        this.metrics,
      );
    } else {
      this.memfile = new MemfileSource(
        { leaseFile: options.leaseFile, stateFile: options.stateFile, pollIntervalMs: options.pollInterval * 1000, subnets },
        this.intake,
        log.child({ module: 'memfile' }),
        this.metrics,
      );
    }
  }

  /** Resolves once the source is running (database mode: listening). */
  start(): Promise<void> {
    this.started ??= this.doStart().catch(async (err: Error) => {
      // Interrupted by stop(): not a failure.
      if (this.stopping) return this.stopping;
      await this.fail(err);
      throw err;
    });
    return this.started;
  }

  private async doStart(): Promise<void> {
    // One short line to read; every option at debug.
    const o = this.options;
    this.log.info(`Starting kea-lease-monitor ${VERSION}`, {
      node: process.version,
      mode: this.notify ? 'database' : 'file',
      source: this.notify ? 'lease4' : o.leaseFile,
      writer: o.writer,
      database: this.db ? describeTarget(o.db) : null,
      output_dir: o.outputDir,
      ...(o.dryRun ? { dry_run: true } : {}),
      ...(o.haGroup !== null ? { ha_group: o.haGroup } : {}),
    });
    this.log.debug('Options', describeOptions(o));
    this.log.info('Selection policy', {
      ...describePolicy(this.policy),
      max_reservations_per_subnet: this.options.maxReservationsPerSubnet,
    });
    if (this.options.dryRun) this.log.warn('Dry run: decisions are logged and counted; neither hosts nor discovery records are written');
    this.schedulePrune();
    this.discovery.prepare();
    // Not ready until the source says so: the writer reports ready at once, the source only when caught up.
    this.metrics.health.set('source', false, 'starting');
    if (this.options.metricsPort > 0) {
      this.server = await this.metrics.serve(this.options.metricsPort, this.options.metricsHost, recordRoutes(this.options, this.metrics));
      const base = `http://${this.options.metricsHost}:${this.options.metricsPort}`;
      this.log.info('Serving metrics and health checks', { metrics: `${base}/metrics`, ready: `${base}/readyz` });
    }
    // Kea's schema and the migrations version, before any lease is read (when the database is up).
    this.schemaGuard?.failed.catch((err: Error) => {
      void this.fail(err);
    });
    await this.schemaGuard?.start(this.guardStop.signal);
    // Before the first lease: which subnets Kea would honour reservations in (a failed read refuses nothing).
    await this.keaConfig?.start();
    this.writer.failed.catch((err: Error) => {
      void this.fail(err);
    });
    this.writer.start();
    if (this.notify) {
      this.reconciler?.failed.catch((err: Error) => {
        void this.fail(err);
      });
      this.notify.failed.catch((err: Error) => {
        void this.fail(err);
      });
      await this.notify.start();
    } else {
      await this.memfile?.start();
    }
  }

  /** The most discovery records ever waiting for the disk at once (for tests and diagnostics). */
  get recordsPeak(): number {
    return this.writer.recordsPeak;
  }

  /** Graceful and idempotent: stop reading, finish writing, close connections. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown().then(() => this.resolveDone());
    return this.stopping;
  }

  private shutdownRun: Promise<void> | null = null;
  private pruning: Promise<void> | null = null;

  /** --prune-unseen-for: a pass a minute after start (sooner for short durations), then every hour or so. */
  private schedulePrune(first = true): void {
    const unseenFor = this.options.pruneUnseenFor;
    if (unseenFor === null || this.shutdownRun) return;
    const every = first ? Math.min(60, Math.max(5, unseenFor)) : Math.min(3600, Math.max(5, unseenFor / 2));
    this.pruneTimer = setTimeout(() => {
      this.pruning = this.pruneOnce().finally(() => {
        this.pruning = null;
        this.schedulePrune(false);
      });
    }, every * 1000);
    this.pruneTimer.unref();
  }

  private async pruneOnce(): Promise<void> {
    const log = this.log.child({ module: 'prune' });
    let client;
    if (!this.db) return; // --prune-unseen-for is SQL-writer only (options.ts)
    try {
      client = await this.db.connect();
      const r = await prune(client, {
        useDatabaseEvents: this.options.useDatabaseEvents,
        leaseFile: this.options.leaseFile,
        outputDir: this.options.outputDir,
        unseenForSeconds: this.options.pruneUnseenFor ?? Infinity,
        dryRun: this.options.dryRun,
        fence: this.fence,
      });
      if (!this.options.dryRun) this.metrics.inc(...M.pruned, {}, r.rows.length);
      // Rows gone: a subnet at its cap may have room again for devices a catch-up would otherwise skip.
      if (!this.options.dryRun && r.rows.length > 0) this.reconciler?.reservationsRemoved();
      for (const row of r.rows) {
        log.info(this.options.dryRun ? '[dry run] would prune reservation' : 'Pruned reservation of a device unseen too long', {
          mac: row.mac,
          ip: row.ip,
          subnet_id: row.subnet_id,
          host_id: row.host_id,
          last_seen: row.last_seen,
        });
      }
    } catch (err) {
      log.warn('Prune pass failed; retrying at the next one', { error: errorMessage(err) });
    } finally {
      client?.release();
    }
  }

  /** A fatal error: logged first, so it is the line an operator sees before the shutdown summary. */
  private async fail(err: Error): Promise<void> {
    if (!this.shutdownRun) {
      this.log.error(fatalLine(err));
      markReported(err);
    }
    await this.shutdown();
    this.rejectDone(err);
  }

  private shutdown(): Promise<void> {
    this.shutdownRun ??= (async () => {
      // A stop that outlasts its grace says what it is waiting for (a hang is then a log line, not a mystery).
      let waitingFor = 'pruning';
      const overdue = setTimeout(
        () => this.log.warn('Still stopping', { waiting_for: waitingFor }),
        this.options.shutdownGrace * 1000 + OVERDUE_STOP_MARGIN_MS,
      );
      overdue.unref();
      const step = async (name: string, p: Promise<unknown> | null | undefined): Promise<void> => {
        waitingFor = name;
        await p;
      };
      this.guardStop.abort();
      if (this.pruneTimer) clearTimeout(this.pruneTimer);
      const keaConfigStopped = this.keaConfig?.stop();
      await step('pruning', this.pruning);
      this.memfile?.requestStop();
      const listenerStopped = this.notify?.stop();
      const reconcilerStopped = this.reconciler?.stop();
      await step('redfish probes', this.prober?.stop());
      await step('writer', this.writer.stop());
      await step('listener', listenerStopped);
      await step('reconciler', reconcilerStopped);
      await step('lease file', this.memfile?.finish());
      await step('kea config', keaConfigStopped);
      await step('database pool', this.db?.end());
      await step('metrics server', new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve())));
      clearTimeout(overdue);
      this.log.info('Stopped', {
        reservations_created: this.metrics.value('kea_lease_monitor_reservations_total', { result: 'created' }),
        reservations_updated: this.metrics.value('kea_lease_monitor_reservations_total', { result: 'updated' }),
        rejected_input: this.metrics.total('kea_lease_monitor_input_rejected_total'),
      });
    })();
    return this.shutdownRun;
  }
}
