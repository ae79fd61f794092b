import type { PoolClient } from 'pg';
import { backoffDelay, sleep } from '../backoff';
import { errorMessage, FatalError } from '../errors';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import { classifyDbError } from './errors';
import { schemaGaugeValue } from './kea-schema';
import type { Database } from './pool';
import { preflight, refusal, warnings } from './preflight';
import { fatalFromError } from './privileges';

/**
 * `run`'s check of Kea's schema version and of the migrations version. A database reachable at start
 * is checked before the source starts; an unreachable one (not fatal) is checked at the first
 * connection, in the background. A refusal is a FatalError (exit 1).
 */
export class SchemaGuard {
  private failFatal!: (err: FatalError) => void;
  /** Rejects when a check made after start() refuses. */
  readonly failed = new Promise<never>((_, reject) => (this.failFatal = reject));

  constructor(
    private readonly pool: Pick<Database, 'target' | 'options'> & { connect(): Promise<PoolClient> },
    private readonly allowUntestedSchema: boolean,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly reconnectMaxDelayMs: number,
  ) {
    this.failed.catch(() => undefined);
  }

  /** Resolves after the first attempt; rejects if it refused. */
  async start(stop: AbortSignal): Promise<void> {
    if (await this.attempt()) return;
    this.log.warn('Database unreachable at start: Kea schema version not checked yet; checking at the first connection');
    void (async () => {
      for (let attempt = 1; !stop.aborted; attempt++) {
        await sleep(backoffDelay(attempt, 250, this.reconnectMaxDelayMs), stop);
        if (stop.aborted) return;
        try {
          if (await this.attempt()) return;
        } catch (err) {
          this.failFatal(err as FatalError);
          return;
        }
      }
    })();
  }

  /** true when checked (and accepted); false when the database could not be reached. */
  private async attempt(): Promise<boolean> {
    let client;
    try {
      client = await this.pool.connect();
    } catch (err) {
      // Wrong password, no such role or database: the real cause, not "unreachable".
      if (classifyDbError(err) === 'fatal') {
        throw await fatalFromError(err, this.pool.target, this.pool.options.user, () => this.pool.connect());
      }
      this.log.debug('Schema check: cannot connect', { error: errorMessage(err) });
      return false;
    }
    try {
      const p = await preflight(client, this.allowUntestedSchema);
      if (p.schema) this.metrics.set(...M.schemaVersion, schemaGaugeValue(p.schema));
      if (p.migrations !== null) this.metrics.set(...M.migrationsVersion, p.migrations);
      const refused = refusal(p);
      if (refused) throw new FatalError(refused);
      this.log.info('Kea database schema', {
        schema_version: p.schema?.text ?? null,
        migrations_version: p.migrations,
        build_migrations_version: p.buildMigrations,
      });
      for (const w of warnings(p)) this.log.warn(w);
      return true;
    } catch (err) {
      if (err instanceof FatalError) throw err;
      this.log.debug('Schema check failed; retrying', { error: errorMessage(err) });
      return false;
    } finally {
      client.release();
    }
  }
}
