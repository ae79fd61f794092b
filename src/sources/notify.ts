import pg from 'pg';
import { backoffDelay, sleep } from '../backoff';
import { clientConfig, describeTarget } from '../db/connection';
import { NOTIFY_CHANNEL, readSchemaState } from '../db/schema';
import { errorMessage, FatalError } from '../errors';
import { classifyLease, InvalidLeaseError } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import type { DbOptions } from '../options';
import type { LeaseQueue } from '../pipeline/queue';
import { catchUp } from './catch-up';
import { parseNotifyPayload } from './notify-payload';

export interface NotifySettings {
  db: DbOptions;
  subnets: ReadonlySet<number>;
  heartbeatMs: number;
  reconnectMaxDelayMs: number;
}

/**
 * LISTENs on a dedicated connection (never a pooled one: a pool would hand the session to someone
 * else and the LISTEN would vanish with it). NOTIFY is not buffered for an absent listener, so
 * every (re)connect is followed by a catch-up query; so is a queue overflow.
 */
export class NotifySource {
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  private client: pg.Client | null = null;
  private overflowed = false;
  private catchUpWanted = false;
  private catchingUp: Promise<void> | null = null;
  private readonly fatal: Promise<never>;
  private failFatal!: (err: Error) => void;

  constructor(
    private readonly settings: NotifySettings,
    private readonly pool: pg.Pool,
    private readonly queue: LeaseQueue,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.fatal = new Promise<never>((_, reject) => (this.failFatal = reject));
    this.fatal.catch(() => undefined);
  }

  /** Resolves once listening for the first time; rejects on a FatalError (missing trigger). */
  start(): Promise<void> {
    let ready!: () => void;
    const listening = new Promise<void>((resolve) => (ready = resolve));
    this.loop ??= this.run(ready);
    return Promise.race([listening, this.fatal]);
  }

  /** Rejects if the source hits an error retrying cannot fix. */
  get failed(): Promise<never> {
    return this.fatal;
  }

  /** Idempotent. */
  async stop(): Promise<void> {
    this.stopping.abort();
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
    await this.loop;
    await this.catchingUp?.catch(() => undefined);
  }

  private async run(ready: () => void): Promise<void> {
    let outageSince: number | null = null;
    let connectedBefore = false;
    for (let attempt = 0; !this.stopping.signal.aborted; attempt++) {
      const client = new pg.Client(clientConfig(this.settings.db, 'kea-lease-monitor-listener'));
      const broken = new Promise<Error>((resolve) => {
        client.on('error', resolve);
        client.on('end', () => resolve(new Error('connection closed')));
      });
      client.on('notification', (msg) => this.onNotification(msg.channel, msg.payload));
      try {
        this.client = client;
        await client.connect();
        const schema = await readSchemaState(client);
        if (!schema.notifyTrigger) {
          throw new FatalError(
            `the lease4 NOTIFY trigger is missing in ${describeTarget(this.settings.db)}: run \`kea-lease-monitor db migrate --notify\` (or set kea_db_enable_notify: true) before --use-database-events`,
          );
        }
        await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
        this.metrics.set(...M.listenerUp, 1);
        this.metrics.health.set('source', false, 'catching up with leases committed while not listening');
        if (connectedBefore) this.metrics.inc(...M.reconnects);
        this.log.info('Listening for database lease events', {
          channel: NOTIFY_CHANNEL, target: describeTarget(this.settings.db),
          ...(outageSince !== null ? { outage_seconds: (Date.now() - outageSince) / 1000 } : {}),
        });
        outageSince = null;
        connectedBefore = true;
        attempt = 0;
        ready();
        // Anything committed before LISTEN took effect (or while we were away) is found here.
        this.scheduleCatchUp();
        const err = await Promise.race([broken, this.heartbeat(client)]);
        if (!this.stopping.signal.aborted) throw err;
      } catch (err) {
        if (err instanceof FatalError) {
          this.failFatal(err);
          await client.end().catch(() => undefined);
          return;
        }
        this.metrics.set(...M.listenerUp, 0);
        this.metrics.health.set('source', false, 'database listener disconnected');
        if (this.stopping.signal.aborted) break;
        if (outageSince === null) {
          outageSince = Date.now();
          this.log.error('Lost the database listener connection; reconnecting with backoff', { error: errorMessage(err) });
        } else {
          this.log.debug('Listener reconnect failed', { error: errorMessage(err), attempt });
        }
      } finally {
        client.removeAllListeners('notification');
        if (this.client === client) this.client = null;
        await client.end().catch(() => undefined);
      }
      await sleep(backoffDelay(attempt, 250, this.settings.reconnectMaxDelayMs), this.stopping.signal);
    }
    this.metrics.set(...M.listenerUp, 0);
  }

  /** Resolves with an error when the connection stops LISTENing or stops answering. */
  private async heartbeat(client: pg.Client): Promise<Error> {
    for (;;) {
      await sleep(this.settings.heartbeatMs, this.stopping.signal);
      if (this.stopping.signal.aborted) return new Error('stopping');
      try {
        const check = client.query<{ ok: boolean }>(`SELECT $1 = ANY (ARRAY(SELECT pg_listening_channels())) AS ok`, [NOTIFY_CHANNEL]);
        // Cancelled once the check settles, so no timer outlives it (or stop()).
        const settled = new AbortController();
        const timeout = sleep(Math.max(5000, this.settings.heartbeatMs), settled.signal).then(() => null);
        const res = await Promise.race([check, timeout]).finally(() => settled.abort());
        if (res === null) return new Error('heartbeat timed out');
        if (!res.rows[0].ok) return new Error('connection is no longer listening');
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
    }
  }

  private onNotification(channel: string, payload: string | undefined): void {
    if (channel !== NOTIFY_CHANNEL) return;
    let fields;
    try {
      fields = parseNotifyPayload(payload ?? '');
    } catch (err) {
      if (!(err instanceof InvalidLeaseError)) throw err;
      this.metrics.inc(...M.rejected, { source: 'database', reason: 'invalid-payload' });
      this.log.warn('Malformed lease notification skipped', { error: err.message, payload: (payload ?? '').slice(0, 160) });
      return;
    }
    this.metrics.inc(...M.received, { source: 'database' });
    const c = classifyLease(fields, 'database', this.settings.subnets);
    if (c.kind !== 'live') {
      this.metrics.inc(...M.ignored, { reason: c.reason });
      return;
    }
    // cltt = expire - valid_lifetime (whole seconds); only when the payload carried both.
    const cltt = (fields.expire - fields.validLifetime) * 1000;
    if (Math.abs(Date.now() - cltt) < 86_400_000) c.lease.committedAt = cltt;
    if (!this.queue.offer(c.lease)) {
      // Full: drop it and let a catch-up query find it once the queue has drained.
      this.metrics.inc(...M.overflows);
      if (!this.overflowed) this.log.warn('Lease queue full; dropped notifications will be caught up', { queue_size: this.queue.limit });
      this.overflowed = true;
      this.scheduleCatchUp();
    }
  }

  /** Runs a catch-up; one asked for while another runs makes that one go round again from the start. */
  private scheduleCatchUp(): void {
    this.catchUpWanted = true;
    if (this.catchingUp || this.stopping.signal.aborted) return;
    this.catchingUp = (async () => {
      for (let attempt = 0; this.catchUpWanted && !this.stopping.signal.aborted; attempt++) {
        this.catchUpWanted = false;
        this.overflowed = false;
        try {
          await catchUp(this.pool, this.settings.subnets, this.queue, this.log, this.metrics);
          attempt = -1;
          if (!this.catchUpWanted && this.client) this.metrics.health.set('source', true);
        } catch (err) {
          this.catchUpWanted = true;
          if (this.stopping.signal.aborted) return;
          this.log[attempt === 0 ? 'warn' : 'debug']('Catch-up query failed; retrying', { error: errorMessage(err) });
          await sleep(backoffDelay(attempt, 250, this.settings.reconnectMaxDelayMs), this.stopping.signal);
        }
      }
    })().finally(() => {
      this.catchingUp = null;
    });
  }
}
