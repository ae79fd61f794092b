import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { migrate } from '../../src/db/migrate';
import type { DbOptions } from '../../src/options';
import { reservations } from './leases';

const SCRIPT = join(__dirname, '..', '..', 'scripts', 'pg-throwaway.sh');
const SCHEMAS = join(__dirname, '..', '..', 'scripts', 'kea-schemas.sh');
let counter = 0;

/** One Kea release's own PostgreSQL schema (scripts/kea-schemas.sh). */
export interface KeaSchema {
  release: string; // "3.0.4"
  version: string; // "29.0", from the file's schema_version
  file: string;
  /** What test names say: "Kea 3.0.4 schema 29.0". */
  label: string;
}

let schemas: KeaSchema[] | undefined;

/**
 * The schemas of every tested Kea release (2.2, 2.6, 3.0), oldest first. KEA_SCHEMAS=2.2,3.0 narrows
 * the matrix for a quick local run.
 */
export function keaSchemas(): KeaSchema[] {
  schemas ??= execFileSync(SCHEMAS, { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => {
      const [release, version, file] = line.split(' ');
      return { release, version, file, label: `Kea ${release} schema ${version}` };
    });
  const only = process.env.KEA_SCHEMAS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return only ? schemas.filter((s) => only.some((o) => s.release === o || s.release.startsWith(`${o}.`))) : schemas;
}

/**
 * A throwaway PostgreSQL 15 cluster for one test file, holding the real Kea schema (kea-admin
 * db-init) in database "kea", which every test copies as a template into a database of its own.
 * Other releases' schemas are loaded on first use into templates of their own (kea_3_0_4, ...).
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

  /** A PostgreSQL program of the cluster's own version (pg_dump, psql), from the server's bin directory. */
  bin(program: string): string {
    const server = readFileSync(join(this.dir, 'data', 'postmaster.opts'), 'utf8').split(/\s/)[0];
    return join(dirname(server), program);
  }

  /** Connection settings for `database` as the superuser over the unix socket. */
  db(database: string): DbOptions {
    return { host: this.dir, port: this.port, database, user: 'postgres' };
  }

  private readonly templates = new Map<string, string>();

  /** The template database holding `schema` (loaded once per cluster). */
  template(schema?: KeaSchema): string {
    if (!schema || schema.file === DEFAULT_SCHEMA) return 'kea';
    let name = this.templates.get(schema.file);
    if (!name) {
      name = `kea_${schema.release.replace(/\W/g, '_')}`;
      execFileSync(SCRIPT, ['load', this.dir, name, schema.file], { stdio: ['ignore', 'ignore', 'inherit'] });
      this.templates.set(schema.file, name);
    }
    return name;
  }

  private readonly writerTemplates = new Map<string, Promise<string>>();

  /**
   * The template of `schema` plus the reservation write functions (migrations/0004, 0005), as any
   * database the monitor writes to has them after `db migrate`; nothing else of the migrations.
   */
  private writerTemplate(schema?: KeaSchema): Promise<string> {
    const base = this.template(schema);
    let made = this.writerTemplates.get(base);
    if (!made) {
      made = (async () => {
        const name = `${base}_writer`;
        await this.sql('postgres', `CREATE DATABASE ${name} TEMPLATE ${base}`);
        for (const file of WRITER_MIGRATIONS) await this.sql(name, readFileSync(file, 'utf8'));
        return name;
      })();
      this.writerTemplates.set(base, made);
    }
    return made;
  }

  /**
   * A new database with the real Kea schema (this machine's, or `schema`), copied from its template,
   * with the monitor's write functions installed; `pristine`: Kea's schema alone, as kea-admin made it.
   */
  async freshDatabase(schema?: KeaSchema, opts: { pristine?: boolean } = {}): Promise<DbOptions> {
    const name = `t${process.pid}_${++counter}`;
    const template = opts.pristine ? this.template(schema) : await this.writerTemplate(schema);
    await this.sql('postgres', `CREATE DATABASE ${name} TEMPLATE ${template}`);
    return this.db(name);
  }

  /** A fresh database after `db migrate --enable-notify`: what database mode runs on. */
  async eventDatabase(schema?: KeaSchema): Promise<DbOptions> {
    return withNotify(await this.freshDatabase(schema));
  }

  /** A database of this exact name (same name on several clusters, for host-list tests), write functions installed. */
  async createDatabase(name: string): Promise<DbOptions> {
    await this.sql('postgres', `CREATE DATABASE ${name} TEMPLATE ${await this.writerTemplate()}`);
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

const WRITER_MIGRATIONS = ['0004_reservation_writer.up.sql', '0005_reservation_writer_verified.up.sql'].map((f) =>
  join(__dirname, '..', '..', 'migrations', f),
);

/** What pg-throwaway.sh loads into "kea" (kea-admin db-init of this machine's Kea). */
const DEFAULT_SCHEMA = '/usr/share/kea/scripts/pgsql/dhcpdb_create.pgsql';

/** A client that stays open for a test. */
export async function connect(db: DbOptions): Promise<pg.Client> {
  const c = new pg.Client({ ...db });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** `db` after `db migrate --enable-notify`. */
export async function withNotify(db: DbOptions): Promise<DbOptions> {
  const c = await connect(db);
  try {
    await migrate(c, { notify: true, dryRun: false });
  } finally {
    await c.end();
  }
  return db;
}

/** The connection flags for `db`, as the monitor's command line takes them (no password: trust on the socket). */
export function dbFlags(db: DbOptions): string[] {
  return ['--db-host', db.host, '--db-port', String(db.port), '--db-name', db.database, '--db-user', db.user];
}

/** The reservations in `db` now, through a connection of its own. */
export async function hostRows(db: DbOptions): ReturnType<typeof reservations> {
  const c = await connect(db);
  try {
    return await reservations(c);
  } finally {
    await c.end();
  }
}
