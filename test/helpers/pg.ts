import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { DbOptions } from '../../src/options';

const SCRIPT = join(__dirname, '..', '..', 'scripts', 'pg-throwaway.sh');
let counter = 0;

/**
 * A throwaway PostgreSQL 15 cluster for one test file, holding the real Kea schema (kea-admin
 * db-init) in database "kea", which every test copies as a template into a database of its own.
 */
export class TestCluster {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static start(): TestCluster {
    const dir = mkdtempSync(join(tmpdir(), 'klm-pg-'));
    const out = execFileSync(SCRIPT, ['start', dir], { encoding: 'utf8' });
    const port = Number(/PGPORT=(\d+)/.exec(out)?.[1]);
    return new TestCluster(dir, port);
  }

  /** Connection settings for `database` as the superuser over the unix socket. */
  db(database: string): DbOptions {
    return { host: this.dir, port: this.port, database, user: 'postgres' };
  }

  /** A new database with the real Kea schema, copied from the template. */
  async freshDatabase(): Promise<DbOptions> {
    const name = `t${process.pid}_${++counter}`;
    await this.sql('postgres', `CREATE DATABASE ${name} TEMPLATE kea`);
    return this.db(name);
  }

  /** A database of this exact name (same name on several clusters, for host-list tests). */
  async createDatabase(name: string): Promise<DbOptions> {
    await this.sql('postgres', `CREATE DATABASE ${name} TEMPLATE kea`);
    return this.db(name);
  }

  /** The unix socket, for a proxy to forward to. */
  get socketPath(): string {
    return join(this.dir, `.s.PGSQL.${this.port}`);
  }

  /**
   * Makes the whole server refuse writes (default_transaction_read_only, reloaded), the way a
   * standby answers a write: SQLSTATE 25006. Existing sessions see it from their next transaction.
   */
  async setReadOnly(on: boolean): Promise<void> {
    const c = new pg.Client(this.db('postgres'));
    await c.connect();
    try {
      await c.query('SET default_transaction_read_only = off');
      await c.query(`ALTER SYSTEM SET default_transaction_read_only = ${on ? 'on' : 'off'}`);
      await c.query('SELECT pg_reload_conf()');
    } finally {
      await c.end();
    }
  }

  async sql<T extends pg.QueryResultRow = pg.QueryResultRow>(database: string, text: string, params: unknown[] = []): Promise<T[]> {
    const c = new pg.Client(this.db(database));
    await c.connect();
    try {
      return (await c.query<T>(text, params)).rows;
    } finally {
      await c.end();
    }
  }

  restart(): void {
    execFileSync(SCRIPT, ['restart', this.dir], { stdio: 'inherit' });
  }

  stop(): void {
    execFileSync(SCRIPT, ['stop', this.dir], { stdio: 'inherit' });
  }
}

/** A client that stays open for a test. */
export async function connect(db: DbOptions): Promise<pg.Client> {
  const c = new pg.Client({ ...db });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}
