import pg from 'pg';
import type { DbOptions, DbTimeouts } from '../options';

/**
 * Every wait on PostgreSQL is bounded (docs/db-reliability.md). The server-side ones are sent as
 * startup parameters, so they hold for every statement of the session, including COMMIT and the
 * advisory lock; the client-side query timeout catches a server that no longer answers at all.
 */
export const DEFAULT_TIMEOUTS: DbTimeouts = {
  statementMs: 30_000,
  lockMs: 5_000,
  idleInTransactionMs: 60_000,
  queryMs: 40_000,
  connectMs: 10_000,
};

/** One host of a (libpq-style) host list. */
export interface Endpoint {
  host: string;
  port: number;
}

/** The hosts to try, in order: `host` split on commas, each with its own port or the shared one. */
export function endpoints(db: DbOptions): Endpoint[] {
  const hosts = db.host
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  return hosts.map((host, i) => ({ host, port: db.ports?.[i] ?? db.port }));
}

/** node-postgres settings for one endpoint (the first by default), shared by the pool and the listener. */
export function clientConfig(db: DbOptions, applicationName: string, at: Endpoint = endpoints(db)[0]): pg.ClientConfig {
  const t = db.timeouts ?? DEFAULT_TIMEOUTS;
  return {
    host: at.host,
    port: at.port,
    database: db.database,
    user: db.user,
    password: db.password,
    application_name: applicationName,
    // TCP keepalive notices a peer that vanished without a FIN (cable pulled, VM frozen).
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    connectionTimeoutMillis: t.connectMs,
    // 0 means "no limit" to PostgreSQL; node-postgres leaves falsy values out (server default).
    statement_timeout: t.statementMs,
    lock_timeout: t.lockMs,
    idle_in_transaction_session_timeout: t.idleInTransactionMs,
    ...(t.queryMs > 0 ? { query_timeout: t.queryMs } : {}),
    // No JIT: a reconcile page over 200,000 leases is estimated past jit_above_cost and spent 470 ms
    // compiling for 150 ms of work. The monitor's statements are all short. PGOPTIONS still applies.
    options: [process.env.PGOPTIONS, '-c jit=off'].filter((o) => o !== undefined && o !== '').join(' '),
  };
}

/** Where we connect, for messages: never includes the password. */
export function describeTarget(db: DbOptions): string {
  const where = endpoints(db)
    .map((e) => `${e.host}:${e.port}`)
    .join(',');
  return `${db.user}@${where}/${db.database}`;
}

export function describeEndpoint(db: DbOptions, e: Endpoint): string {
  return `${db.user}@${e.host}:${e.port}/${db.database}`;
}

/** The server is up but cannot take writes (a standby, or default_transaction_read_only). */
export class ReadOnlyServerError extends Error {
  override name = 'ReadOnlyServerError';
  readonly code = '25006';
}

/** Like libpq's target_session_attrs=read-write: a hot standby or a read-only default is refused. */
export async function assertReadWrite(client: pg.ClientBase, where: string): Promise<void> {
  const { rows } = await client.query<{ recovery: boolean; ro: string }>(
    `SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS ro`,
  );
  if (rows[0].recovery) throw new ReadOnlyServerError(`${where} is a standby (in recovery)`);
  if (rows[0].ro === 'on') throw new ReadOnlyServerError(`${where} is read-only (transaction_read_only = on)`);
}

/**
 * Connects a dedicated client to the first read-write primary of the host list, starting at
 * `start` and wrapping round. Throws the last error when no host will do.
 */
export async function connectPrimary(
  db: DbOptions,
  applicationName: string,
  start = 0,
  onError?: (c: pg.Client) => void,
): Promise<{ client: pg.Client; index: number }> {
  const list = endpoints(db);
  const errors: string[] = [];
  const codes = new Set<unknown>();
  let last: unknown;
  for (let k = 0; k < list.length; k++) {
    const index = (start + k) % list.length;
    const client = new pg.Client(clientConfig(db, applicationName, list[index]));
    client.on('error', () => undefined);
    onError?.(client);
    try {
      await client.connect();
      await assertReadWrite(client, describeEndpoint(db, list[index]));
      return { client, index };
    } catch (err) {
      last = err;
      codes.add((err as { code?: unknown }).code);
      errors.push(`${list[index].host}:${list[index].port}: ${(err as Error).message}`);
      await client.end().catch(() => undefined);
    }
  }
  if (list.length === 1) throw last;
  // The SQLSTATE is kept only when every host said the same (say, the password is wrong everywhere).
  const err = new Error(`no read-write primary among ${list.length} hosts (${errors.join('; ')})`);
  throw codes.size === 1 ? Object.assign(err, { code: [...codes][0] }) : err;
}
