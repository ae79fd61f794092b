/**
 * "A monitor is running on this database." A writing daemon holds a shared session advisory lock
 * on a dedicated connection named `kea-lease-monitor run`; `reservations purge` and `prune` take
 * the same lock exclusively, which fails while any monitor holds it. The pool's connections come
 * and go (idle timeout), so they cannot say this; a held lock can, and the server drops it with
 * the session when the process dies.
 */
import pg from 'pg';
import { backoffDelay, sleep } from '../backoff';
import { errorMessage } from '../errors';
import type { Logger } from '../logger';
import type { DbOptions } from '../options';
import { connectPrimary } from './connection';

// Two-key lock: classid "KLMP", objid 0 (pg_locks: objsubid = 2). The HA lock's class is "KLMH".
export const PRESENCE_LOCK_CLASS = 0x4b4c4d50;
export const PRESENCE_APPLICATION = 'kea-lease-monitor run';
/** The daemon's other connections (pool, listener, HA lock), for daemons that predate the lock. */
const DAEMON_APPLICATIONS = [PRESENCE_APPLICATION, 'kea-lease-monitor', 'kea-lease-monitor-listener', 'kea-lease-monitor-ha'];

/** The daemon's side: holds the shared lock for as long as it runs, reconnecting when it must. */
export class Presence {
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  private client: pg.Client | null = null;

  constructor(
    private readonly db: DbOptions,
    private readonly log: Logger,
    private readonly intervalMs = 15_000,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Waits at most `closeWaitMs` for the connection to close: the server drops the lock with the
   * session anyway, and a connect or close that hangs must not keep a stopped daemon from exiting.
   */
  async stop(closeWaitMs = 2000): Promise<void> {
    this.stopping.abort();
    const closed = (async () => {
      await this.client?.end().catch(() => undefined);
      await this.loop;
      return true;
    })();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), closeWaitMs)));
    const done = await Promise.race([closed, waited]);
    clearTimeout(timer);
    if (!done) this.log.warn('The presence connection did not close in time; stopping without it', { waited_ms: closeWaitMs });
  }

  private async run(): Promise<void> {
    let attempt = 0;
    let lastError = '';
    while (!this.stopping.signal.aborted) {
      let broken = false;
      try {
        const client = (await connectPrimary(this.db, PRESENCE_APPLICATION)).client;
        client.on('error', () => (broken = true));
        client.on('end', () => (broken = true));
        this.client = client;
        let held = false;
        while (!this.stopping.signal.aborted && !broken) {
          if (!held) {
            const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock_shared($1, 0) AS ok', [PRESENCE_LOCK_CLASS]);
            held = rows[0].ok;
            // Only a purge or prune holds it exclusively, for the few seconds it runs.
            if (!held) this.log.debug('A reservations purge or prune is running; taking the presence lock after it');
          } else {
            await client.query('SELECT 1');
          }
          attempt = 0;
          lastError = '';
          await sleep(held ? this.intervalMs : 1000, this.stopping.signal);
        }
      } catch (err) {
        const msg = errorMessage(err);
        if (!this.stopping.signal.aborted && msg !== lastError) this.log.debug('Presence connection failed; retrying', { error: msg });
        lastError = msg;
      } finally {
        const c = this.client;
        this.client = null;
        await c?.end().catch(() => undefined);
      }
      await sleep(backoffDelay(attempt++, 500, this.intervalMs), this.stopping.signal);
    }
  }
}

export interface RunningMonitor {
  pid: number;
  application: string | null;
  /** Client address and user, when this role may see them (pg_stat_activity hides them otherwise). */
  from: string | null;
  user: string | null;
}

/**
 * The command's side: takes the lock exclusively on `c` (held until the session ends, so a daemon
 * starting meanwhile waits for it) and returns the monitors found running, empty when none.
 */
export async function runningMonitors(c: pg.ClientBase): Promise<RunningMonitor[]> {
  const { rows } = await c.query<{ free: boolean }>('SELECT pg_try_advisory_lock($1, 0) AS free', [PRESENCE_LOCK_CLASS]);
  const byLock = rows[0].free
    ? []
    : (
        await c.query<RunningMonitor>(
          `SELECT l.pid, a.application_name AS application, host(a.client_addr) AS from, a.usename AS user
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = 0 AND l.objsubid = 2 AND l.granted
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            ORDER BY l.pid`,
          [PRESENCE_LOCK_CLASS],
        )
      ).rows;
  if (byLock.length > 0) return byLock;
  const { rows: bySession } = await c.query<RunningMonitor>(
    `SELECT pid, application_name AS application, host(client_addr) AS from, usename AS user
       FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = ANY ($1::text[])
      ORDER BY pid`,
    [DAEMON_APPLICATIONS],
  );
  return bySession;
}

/** One line naming what to stop. */
export function describeRunning(found: RunningMonitor[], command: string): string {
  const who = found
    .slice(0, 3)
    .map((m) => `backend pid ${m.pid}${m.from ? ` from ${m.from}` : ''}${m.user ? ` as ${m.user}` : ''}`)
    .join(', ');
  const more = found.length > 3 ? ` and ${found.length - 3} more` : '';
  return (
    `a running kea-lease-monitor is using this database (${who}${more}) and would reserve live devices again: ` +
    `stop it on every host first (systemctl stop kea-lease-monitor, HA peers too), or run \`${command}\` with --force`
  );
}
