import type pg from 'pg';
import { backoffDelay, sleep } from '../backoff';
import { classifyDbError } from '../db/errors';
import type { Database } from '../db/pool';
import { checkPrivileges, fatalFromError } from '../db/privileges';
import { NOTIFY_CHANNEL, readSchemaState } from '../db/schema';
import { errorMessage, FatalError } from '../errors';
import { classifyLease, InvalidLeaseError } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import type { LeaseSink } from '../pipeline/intake';
import { parseNotifyPayload } from './notify-payload';

export interface NotifySettings {
  subnets: ReadonlySet<number>;
  heartbeatMs: number;
  reconnectMaxDelayMs: number;
}

/**
 * What the source says about its connection to whoever decides when lease4 is read again (the
 * reconciler): the source only reports, it never runs a catch-up itself.
 */
export interface ListenerEvents {
  /** LISTEN took effect on a new connection: whatever was committed before it was not notified. */
  connected(): void;
  /** The LISTEN connection is gone (a reconnect follows unless stopping). */
  disconnected(): void;
  /** A notification was dropped on a full queue. */
  overflowed(): void;
}

const LISTENER_NAME = 'kea-lease-monitor-listener';

/**
 * LISTENs on a dedicated connection (never a pooled one: a pool would hand the session to someone
 * else and the LISTEN would vanish with it). NOTIFY is not buffered for an absent listener, so
 * every (re)connect and every queue overflow is reported to `events`, which catches up.
 */
export class NotifySource {
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  private client: pg.Client | null = null;
  private readonly fatal: Promise<never>;
  private failFatal!: (err: Error) => void;

  constructor(
    private readonly settings: NotifySettings,
    private readonly db: Database,
    private readonly queue: LeaseSink,
    private readonly events: ListenerEvents,
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
  }

  private async run(ready: () => void): Promise<void> {
    let outageSince: number | null = null;
    let connectedBefore = false;
    for (let attempt = 0; !this.stopping.signal.aborted; attempt++) {
      let client: pg.Client | null = null;
      try {
        // The first read-write primary of the host list (the pool follows the same host).
        client = await this.db.connectDedicated(LISTENER_NAME);
        const c = client;
        const broken = new Promise<Error>((resolve) => {
          c.on('error', resolve);
          c.on('end', () => resolve(new Error('connection closed')));
        });
        c.on('notification', (msg) => this.onNotification(msg.channel, msg.payload));
        this.client = c;
        if (this.stopping.signal.aborted) break;
        await checkPrivileges(c, { lease4Required: true });
        const schema = await readSchemaState(c);
        if (!schema.notifyTrigger) {
          throw new FatalError(
            `the lease4 NOTIFY trigger is missing in ${this.db.target}: run \`kea-lease-monitor db migrate --notify\` (or set kea_db_enable_notify: true) before --use-database-events`,
          );
        }
        await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
        this.metrics.set(...M.listenerUp, 1);
        if (connectedBefore) this.metrics.inc(...M.reconnects);
        this.log.info('Listening for database lease events', {
          channel: NOTIFY_CHANNEL,
          target: this.db.target,
          ...(outageSince !== null ? { outage_seconds: (Date.now() - outageSince) / 1000 } : {}),
        });
        outageSince = null;
        connectedBefore = true;
        attempt = 0;
        ready();
        // Anything committed before LISTEN took effect (or while we were away) is caught up from here.
        this.events.connected();
        const err = await Promise.race([broken, this.heartbeat(c)]);
        if (!this.stopping.signal.aborted) throw err;
      } catch (caught) {
        let err = caught;
        if (!(err instanceof FatalError) && classifyDbError(err) === 'fatal') {
          err = await fatalFromError(err, this.db.target, this.db.options.user, () => this.db.connect(), { lease4Required: true });
        }
        if (err instanceof FatalError) {
          this.failFatal(err);
          await client?.end().catch(() => undefined);
          return;
        }
        this.metrics.set(...M.listenerUp, 0);
        this.metrics.health.set('source', false, 'database listener disconnected');
        if (this.stopping.signal.aborted) break;
        if (outageSince === null) {
          outageSince = Date.now();
          // Never connected yet: nothing was lost (the schema check already said the database is unreachable).
          if (connectedBefore) {
            this.log.error('Lost the database listener connection; reconnecting with backoff', { error: errorMessage(err) });
          } else {
            this.log.warn('Cannot connect the database listener yet; retrying with backoff', { error: errorMessage(err) });
          }
        } else {
          this.log.debug('Listener reconnect failed', { error: errorMessage(err), attempt });
        }
      } finally {
        this.events.disconnected();
        client?.removeAllListeners('notification');
        if (this.client === client) this.client = null;
        await client?.end().catch(() => undefined);
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
        // Also: a primary that became a standby or read-only gets no more lease writes; move on.
        const check = client.query<{ ok: boolean; recovery: boolean; ro: string }>(
          `SELECT $1 = ANY (ARRAY(SELECT pg_listening_channels())) AS ok, pg_is_in_recovery() AS recovery,
                  current_setting('transaction_read_only') AS ro`,
          [NOTIFY_CHANNEL],
        );
        // Cancelled once the check settles, so no timer outlives it (or stop()).
        const settled = new AbortController();
        const timeout = sleep(Math.max(5000, this.settings.heartbeatMs), settled.signal).then(() => null);
        const res = await Promise.race([check, timeout]).finally(() => settled.abort());
        if (res === null) return new Error('heartbeat timed out');
        if (!res.rows[0].ok) return new Error('connection is no longer listening');
        if (res.rows[0].recovery || res.rows[0].ro === 'on') return new Error(`${this.db.target} is no longer a read-write primary`);
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
    if (c.kind === 'not-selected') {
      this.metrics.inc(...M.notSelected, { reason: c.reason, subnet_id: c.subnetId });
      return;
    }
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
      this.events.overflowed();
    }
  }
}
