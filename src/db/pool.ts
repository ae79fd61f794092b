import pg from 'pg';
import type { Logger } from '../logger';
import type { DbOptions } from '../options';
import { assertReadWrite, clientConfig, connectPrimary, describeEndpoint, Endpoint, endpoints } from './connection';

// int8 (bigint) columns: lease addresses and subnet ids fit a double exactly; parse them as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/**
 * The write pool over a libpq-style host list: connections go to the current host, each new one is
 * checked to be a read-write primary, and a host that is down or read-only makes it move on to the
 * next (wrapping round). The listener asks here too (connectDedicated), so both follow one primary.
 */
export class Database {
  private readonly list: Endpoint[];
  private index = 0;
  private pool: pg.Pool | null = null;
  private readonly verified = new WeakSet<pg.PoolClient>();
  private ended = false;

  constructor(
    readonly options: DbOptions,
    private readonly size: number,
    private readonly log: Logger,
  ) {
    this.list = endpoints(options);
  }

  /** The host in use, for messages. */
  get target(): string {
    return describeEndpoint(this.options, this.list[this.index]);
  }

  private poolAt(index: number): pg.Pool {
    if (this.pool && index === this.index) return this.pool;
    this.dropPool();
    this.index = index;
    const pool = new pg.Pool({
      ...clientConfig(this.options, 'kea-lease-monitor', this.list[index]),
      max: this.size,
      idleTimeoutMillis: 30_000,
    });
    // An idle client losing its server must not crash the process; the next checkout reconnects.
    pool.on('error', (err) => this.log.debug('Idle database connection closed', { error: err.message }));
    this.pool = pool;
    return pool;
  }

  private dropPool(): void {
    const old = this.pool;
    this.pool = null;
    void old?.end().catch(() => undefined);
  }

  /** A pooled client on a read-write primary; release it with release(err) after any error. */
  async connect(): Promise<pg.PoolClient> {
    if (this.ended) throw new Error('the database pool is closed');
    const errors: string[] = [];
    const codes = new Set<unknown>();
    let last: unknown;
    const start = this.index;
    for (let k = 0; k < this.list.length; k++) {
      const index = (start + k) % this.list.length;
      let client: pg.PoolClient | undefined;
      try {
        client = await this.poolAt(index).connect();
        if (!this.verified.has(client)) {
          await assertReadWrite(client, describeEndpoint(this.options, this.list[index]));
          this.verified.add(client);
        }
        if (index !== start) this.log.warn('Moved to another PostgreSQL host', { target: this.target });
        return client;
      } catch (err) {
        client?.release(err instanceof Error ? err : true);
        last = err;
        codes.add((err as { code?: unknown }).code);
        errors.push(`${this.list[index].host}:${this.list[index].port}: ${(err as Error).message}`);
      }
    }
    if (this.list.length === 1) throw last;
    const err = new Error(`no read-write primary among ${this.list.length} hosts (${errors.join('; ')})`);
    throw codes.size === 1 ? Object.assign(err, { code: [...codes][0] }) : err;
  }

  /** One statement on a pooled client; a failed client is discarded, not reused. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    const client = await this.connect();
    try {
      const res = await client.query<R>(text, values);
      client.release();
      return res;
    } catch (err) {
      client.release(err instanceof Error ? err : true);
      this.noteError(err);
      throw err;
    }
  }

  /**
   * After a statement failed: a server that turned read-only (25006) or stopped answering is
   * left with its idle connections, so the next connect() opens (and checks) a new one.
   */
  noteError(err: unknown): void {
    const code = (err as { code?: unknown }).code;
    const msg = err instanceof Error ? err.message : '';
    if (code === '25006' || /timeout|terminated|Connection terminated/i.test(msg)) this.dropPool();
  }

  /** A dedicated (unpooled) client on the primary, for LISTEN; moves the pool to that host too. */
  async connectDedicated(applicationName: string): Promise<pg.Client> {
    const { client, index } = await connectPrimary(this.options, applicationName, this.index);
    if (index !== this.index) {
      this.dropPool();
      this.index = index;
      this.log.warn('Moved to another PostgreSQL host', { target: this.target });
    }
    return client;
  }

  async end(): Promise<void> {
    this.ended = true;
    const p = this.pool;
    this.pool = null;
    await p?.end().catch(() => undefined);
  }
}
