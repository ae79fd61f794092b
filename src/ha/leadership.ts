import pg from 'pg';
import { sleep } from '../backoff';
import { connectPrimary } from '../db/connection';
import { errorMessage } from '../errors';
import type { Logger } from '../logger';
import type { DbOptions } from '../options';
import type { FenceToken } from '../domain/fence';

// Two-key advisory lock: classid "KLMH", objid a hash of the group name. pg_locks shows it with
// objsubid = 2, so it can never be mistaken for the writers' one-key lock (objsubid = 1).
export const HA_LOCK_CLASS = 0x4b4c4d48;

/** FNV-1a of the group name, kept positive so pg_locks.objid (an oid) compares as written. */
export function haLockKey(group: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(`kea-lease-monitor:${group}`, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h & 0x7fffffff;
}

export interface LeadershipSettings {
  db: DbOptions;
  group: string;
  /** Seconds between lock attempts (standby) and liveness checks (active). */
  intervalMs: number;
}

export type LeadershipEvent = 'acquired' | 'lost';

/**
 * Holds a PostgreSQL session advisory lock on a dedicated connection: whoever holds it is the
 * active monitor. A standby polls pg_try_advisory_lock; the active checks its connection every
 * interval and steps down at once when the check fails. The server drops the lock with the
 * session (process killed, connection reset, idle_session_timeout on a silent peer).
 */
export class Leadership {
  readonly key: number;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  private client: pg.Client | null = null;
  /** The lock connection's session (pid and backend_start) while we hold the lock; null otherwise. */
  private leader: FenceToken | null = null;
  private listener: (e: LeadershipEvent) => void = () => undefined;
  private wake: (() => void) | null = null;
  private dropSession = false;

  constructor(
    private readonly settings: LeadershipSettings,
    private readonly log: Logger,
  ) {
    this.key = haLockKey(settings.group);
  }

  get active(): boolean {
    return this.leader !== null;
  }

  onChange(fn: (e: LeadershipEvent) => void): void {
    this.listener = fn;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.step('stopping');
    const c = this.client;
    this.client = null;
    if (c) await endClient(c);
    await this.loop;
  }

  /**
   * What a writing transaction checks after the writers' lock (kea_lm_fence_held): the server must
   * still see this session, by pid and backend_start, holding the lock. A pid alone could name a
   * later session that reused it. Null when we are not active, so nothing is written at all.
   */
  token(): FenceToken | null {
    return this.leader;
  }

  /** The writer found the fence closed: step down now and drop the lock connection. */
  fenced(): void {
    if (this.leader === null) return;
    this.dropSession = true;
    this.step('the write fence found the lock gone');
    this.wake?.();
  }

  private step(reason: string): void {
    if (this.leader === null) return;
    this.leader = null;
    this.log.warn('No longer the active monitor; writing stopped, standing by', { group: this.settings.group, reason });
    this.listener('lost');
  }

  private async run(): Promise<void> {
    const { intervalMs } = this.settings;
    let lastError = '';
    while (!this.stopping.signal.aborted) {
      let client: pg.Client | null = null;
      let broken = false;
      try {
        // The lock lives on the read-write primary the writers use: the fence checks pg_locks there.
        client = (await connectPrimary(this.settings.db, 'kea-lease-monitor-ha')).client;
        client.on('error', () => (broken = true));
        client.on('end', () => {
          broken = true;
          this.step('lock connection closed');
          this.wake?.();
        });
        this.client = client;
        // The server ends a session that stops talking to it, which releases the lock for the
        // standby; the heartbeat below talks far more often than this. Best effort (PG >= 14).
        await client.query(`SET idle_session_timeout = '${Math.ceil((intervalMs * 4) / 1000)}s'`).catch(() => undefined);
        const session = (
          await client.query<{ pid: number; start: string }>(
            `SELECT pid, (extract(epoch FROM backend_start) * 1000000)::bigint::text AS start
               FROM pg_stat_activity WHERE pid = pg_backend_pid()`,
          )
        ).rows[0];
        const token: FenceToken = { lockClass: HA_LOCK_CLASS, lockKey: this.key, pid: session.pid, backendStart: session.start };
        lastError = '';
        while (!this.stopping.signal.aborted && !broken) {
          if (this.leader === null) {
            const { rows } = await this.timed(
              client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [HA_LOCK_CLASS, this.key]),
            );
            if (rows[0].ok && !broken && !this.stopping.signal.aborted) {
              this.leader = token;
              this.log.info('Active monitor: holding the HA lock', { group: this.settings.group, backend_pid: token.pid });
              this.listener('acquired');
            }
          } else {
            await this.timed(client.query('SELECT 1'));
          }
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            void sleep(intervalMs, this.stopping.signal).then(resolve);
          });
          this.wake = null;
          // fenced() asked us to step down: a new session re-contends from scratch.
          if (this.dropSession) break;
        }
      } catch (err) {
        const msg = errorMessage(err);
        if (!this.stopping.signal.aborted && msg !== lastError) this.log.warn('HA lock connection failed; retrying', { error: msg });
        lastError = msg;
      } finally {
        this.step('lock connection failed');
        if (client) {
          client.removeAllListeners('end');
          if (this.client === client) this.client = null;
          await endClient(client);
        }
        this.dropSession = false;
      }
      await sleep(intervalMs, this.stopping.signal);
    }
  }

  /** A query that takes longer than two intervals counts as a dead connection. */
  private timed<T>(q: Promise<T>): Promise<T> {
    const limit = Math.max(2000, this.settings.intervalMs * 2);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${limit} ms`)), limit);
    });
    return Promise.race([q, timeout]).finally(() => clearTimeout(timer));
  }
}

/** Ends a client; a silent (half-open) peer would keep end() waiting, so the socket is destroyed after 1 s. */
async function endClient(c: pg.Client): Promise<void> {
  const ended = c.end().catch(() => undefined);
  if (await Promise.race([ended.then(() => true), sleep(1000).then(() => false)])) return;
  (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}
