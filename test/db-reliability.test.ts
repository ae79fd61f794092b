import assert from 'node:assert/strict';
import { appendFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { clientConfig, DEFAULT_TIMEOUTS } from '../src/db/connection';
import { FatalError } from '../src/errors';
import type { DbOptions, DbTimeouts, Options } from '../src/options';
import { CSV_HEADER, csvRow, fileStem, insertLeases, manyLeases, reservations } from './helpers/leases';
import { startMonitor, tempDir, testOptions } from './helpers/monitor';
import { connect, TestCluster, withNotify } from './helpers/pg';
import { TcpProxy } from './helpers/tcp-proxy';
import { waitFor } from './helpers/wait';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

let roles = 0;

function timeouts(over: Partial<DbTimeouts>): DbTimeouts {
  return { ...DEFAULT_TIMEOUTS, ...over };
}

async function countHosts(db: DbOptions): Promise<number> {
  const c = await connect(db);
  try {
    return (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM hosts')).rows[0].n;
  } finally {
    await c.end();
  }
}

/** A lease file holding `n` leases from `offset`, for file mode. */
function leaseFile(n: number, offset: number): string {
  const file = join(tempDir('klm-leases-'), 'kea-leases4.csv');
  writeFileSync(file, CSV_HEADER + '\n' + manyLeases(n, offset).map(csvRow).join(''));
  return file;
}

/** A login role with the daemon's usual grants, minus `without` (e.g. "INSERT ON hosts"). */
async function role(db: DbOptions, revoke: string[] = []): Promise<DbOptions> {
  const name = `klm_r${process.pid}_${++roles}`;
  await cluster.sql(
    db.database,
    `CREATE ROLE ${name} LOGIN;
    GRANT SELECT ON lease4 TO ${name};
    GRANT SELECT, INSERT, UPDATE ON hosts TO ${name};
    GRANT USAGE ON SEQUENCE hosts_host_id_seq TO ${name}`,
  );
  for (const r of revoke) await cluster.sql(db.database, `REVOKE ${r} FROM ${name}`);
  return { ...db, user: name };
}

/** `p`, or a rejection with `message` after `ms`; the timer is cleared either way, so none is left armed. */
async function within<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Settles with the monitor's fatal error, or fails the test if it keeps running. */
async function fatalOf(options: Options): Promise<{ error: FatalError; logs: string[] }> {
  const run = await startMonitorAllowingFailure(options);
  try {
    const error = await within(
      run.done.then(() => assert.fail('the monitor stopped without an error')),
      15_000,
      'the monitor kept running: no fatal error within 15 s',
    ).catch((err: unknown) => err);
    assert.ok(error instanceof FatalError, `a FatalError, got ${String(error)}`);
    return { error, logs: run.logs };
  } finally {
    await run.stop();
  }
}

async function startMonitorAllowingFailure(options: Options) {
  const { Monitor } = await import('../src/monitor');
  const { memoryLogger } = await import('./helpers/monitor');
  const { logger, logs } = memoryLogger();
  const monitor = new Monitor(options, logger);
  const started = monitor.start().catch(() => undefined);
  return {
    logs,
    done: monitor.done,
    stop: async () => {
      await monitor.stop();
      await started;
    },
  };
}

describe('every wait on PostgreSQL is bounded', () => {
  test("the monitor's sessions run without JIT, and keep what PGOPTIONS asks for", async () => {
    const db = await cluster.eventDatabase();
    const saved = process.env.PGOPTIONS;
    process.env.PGOPTIONS = '-c work_mem=7MB';
    const c = new pg.Client(clientConfig(db, 'jit-check'));
    try {
      await c.connect();
      const { rows } = await c.query<{ jit: string; work_mem: string }>(
        "SELECT current_setting('jit') AS jit, current_setting('work_mem') AS work_mem",
      );
      assert.deepEqual(rows[0], { jit: 'off', work_mem: '7MB' });
    } finally {
      await c.end();
      if (saved === undefined) delete process.env.PGOPTIONS;
      else process.env.PGOPTIONS = saved;
    }
  });

  test('behind an orphaned lock (table lock, writer advisory lock) the writer times out, logs, retries, and writes once it is released', async () => {
    const db = await cluster.eventDatabase();
    const run = await startMonitor(testOptions({ ...db, timeouts: timeouts({ lockMs: 300 }) }, { useDatabaseEvents: true }));
    const holder = await connect(db);
    const writer = await connect(db);
    try {
      const locks = ['LOCK TABLE hosts IN ACCESS EXCLUSIVE MODE', `SELECT pg_advisory_xact_lock(${0x4b4c4e})`];
      for (const [i, lock] of locks.entries()) {
        // Another session takes the lock and goes idle inside its transaction, holding it.
        await holder.query('BEGIN');
        await holder.query(lock);
        const errorsBefore = run.monitor.metrics.value('kea_lease_monitor_db_errors_total', { class: 'transient' });
        const lease = manyLeases(1, 100 + i)[0];
        await insertLeases(writer, [lease]);
        await waitFor(
          `a lock timeout logged behind "${lock}"`,
          () => run.logs.filter((l) => l.includes('Cannot write reservations') && l.includes('lock timeout')).length === i + 1,
        );
        await waitFor(
          'a retry that times out again',
          () => run.monitor.metrics.value('kea_lease_monitor_db_errors_total', { class: 'transient' }) >= errorsBefore + 2,
        );
        // (Counting rows in hosts would itself wait behind the table lock.)
        assert.equal(
          run.monitor.metrics.value('kea_lease_monitor_reservations_total', { result: 'created' }),
          i,
          'nothing written while the lock is held',
        );
        await holder.query('ROLLBACK');
        await waitFor('the reservation once the lock is gone', async () => (await countHosts(db)) === i + 1);
        await waitFor('the outage end logged', () => run.logs.filter((l) => l.includes('Writing reservations again')).length === i + 1);
      }
    } finally {
      await holder.end();
      await writer.end();
      await run.stop();
    }
  });

  test('on a half-open path (a proxy that stops forwarding both ways) the batch is abandoned and retried on a new connection', async () => {
    const db = await cluster.freshDatabase();
    const proxy = await TcpProxy.start({ path: cluster.socketPath });
    const file = leaseFile(1, 200);
    const viaProxy: DbOptions = {
      ...db,
      host: '127.0.0.1',
      port: proxy.port,
      timeouts: timeouts({ queryMs: 1500, connectMs: 1000, statementMs: 1000 }),
    };
    const run = await startMonitor(testOptions(viaProxy, { leaseFile: file }));
    try {
      await waitFor('the first reservation', async () => (await countHosts(db)) === 1);
      proxy.pause();
      appendFileSync(file, csvRow(manyLeases(1, 201)[0]));
      await waitFor(
        'the stalled batch abandoned (query timeout)',
        () => run.logs.some((l) => l.includes('Cannot write reservations') && /timeout/i.test(l)),
        15_000,
      );
      // The retry on a new connection does not get through either (connect timeout), and is retried.
      await waitFor(
        'retries on new connections',
        () => run.monitor.metrics.value('kea_lease_monitor_db_errors_total', { class: 'transient' }) >= 2,
        15_000,
      );
      assert.equal(await countHosts(db), 1);
      proxy.resume();
      await waitFor('the reservation after the path comes back', async () => (await countHosts(db)) === 2, 20_000);
      assert.ok(run.logs.some((l) => l.includes('Writing reservations again')));
    } finally {
      await run.stop();
      await proxy.stop();
    }
  });
});

describe('missing privileges stop the monitor with one line naming the fix', () => {
  test('without INSERT on hosts (file mode) it refuses to start', async () => {
    const db = await role(await cluster.freshDatabase(), ['INSERT ON hosts']);
    const { error, logs } = await fatalOf(testOptions(db, { leaseFile: leaseFile(1, 300) }));
    assert.equal(error.message, `role "${db.user}" lacks INSERT on table hosts: GRANT INSERT ON hosts TO ${db.user}`);
    assert.deepEqual(
      logs.filter((l) => l.includes('"level":"error"')).map((l) => JSON.parse(l).message),
      [error.message],
      'the refusal is the one error logged (by the monitor, before its shutdown lines)',
    );
  });

  test('without USAGE on the sequence and SELECT on lease4, both are named', async () => {
    const db = await role(await cluster.freshDatabase(), ['USAGE ON SEQUENCE hosts_host_id_seq', 'SELECT ON lease4']);
    const { error } = await fatalOf(testOptions(db, { leaseFile: leaseFile(1, 310) }));
    assert.equal(
      error.message,
      `role "${db.user}" lacks USAGE on sequence public.hosts_host_id_seq and SELECT on table lease4: ` +
        `GRANT USAGE ON SEQUENCE public.hosts_host_id_seq TO ${db.user}; GRANT SELECT ON lease4 TO ${db.user}`,
    );
  });

  test('database mode without SELECT on lease4 refuses to start', async () => {
    const db = await role(await cluster.eventDatabase(), ['SELECT ON lease4']);
    const { error } = await fatalOf(testOptions(db, { useDatabaseEvents: true }));
    assert.match(error.message, /lacks SELECT on table lease4: GRANT SELECT ON lease4 TO/);
  });

  test('a privilege revoked while running stops it the same way instead of retrying', async () => {
    const db = await role(await cluster.freshDatabase());
    const file = leaseFile(1, 320);
    const run = await startMonitorAllowingFailure(testOptions(db, { leaseFile: file }));
    try {
      await waitFor('the first reservation', async () => (await countHosts(db)) === 1);
      await cluster.sql(db.database, `REVOKE INSERT ON hosts FROM ${db.user}`);
      appendFileSync(file, csvRow(manyLeases(1, 321)[0]));
      const err = await within(
        run.done.then(() => null),
        15_000,
        'still running',
      ).catch((e: unknown) => e);
      assert.ok(err instanceof FatalError, `stopped with a FatalError, got ${String(err)}`);
      assert.equal(err.message, `role "${db.user}" lacks INSERT on table hosts: GRANT INSERT ON hosts TO ${db.user}`);
      assert.ok(!run.logs.some((l) => l.includes('Cannot write reservations')), 'no retry loop was entered');
    } finally {
      await run.stop();
    }
  });
});

describe('a host list: only a read-write primary is used', () => {
  let second: TestCluster;
  before(() => {
    second = TestCluster.start();
  });
  after(() => second.stop());

  test('--db-host a,b: writes go to the primary, and follow it when the roles flip', async () => {
    const name = `failover_${process.pid}`;
    const a = await withNotify(await cluster.createDatabase(name));
    const b = await withNotify(await second.createDatabase(name));
    await cluster.setReadOnly(true);
    const both: DbOptions = { ...a, host: `${a.host},${b.host}`, port: a.port, ports: [a.port, b.port] };
    const run = await startMonitor(testOptions(both, { useDatabaseEvents: true }));
    try {
      const cb = await connect(b);
      await insertLeases(cb, manyLeases(3, 400));
      await cb.end();
      await waitFor('reservations on the primary (b)', async () => (await countHosts(b)) === 3);
      assert.equal(await countHosts(a), 0, 'nothing on the read-only host');

      // Flip: b becomes read-only, a the primary; Kea now writes its leases to a.
      await second.setReadOnly(true);
      await cluster.setReadOnly(false);
      const ca = await connect(a);
      await insertLeases(ca, manyLeases(2, 410));
      await ca.end();
      await waitFor('reservations on the new primary (a)', async () => (await countHosts(a)) === 2, 30_000);
      assert.equal(await countHosts(b), 3);
      assert.ok(run.logs.some((l) => l.includes('Moved to another PostgreSQL host')));
    } finally {
      await run.stop();
      await cluster.setReadOnly(false);
      await second.setReadOnly(false);
    }
  });
});

describe('reconciliation while connected', () => {
  test('the timer finds a lease whose notification was lost and a record that went missing', async () => {
    const db = await cluster.eventDatabase();
    const run = await startMonitor(testOptions(db, { useDatabaseEvents: true, reconcileInterval: 0.3 }), 'debug');
    const c = await connect(db);
    try {
      const [first, lost] = manyLeases(2, 500);
      await insertLeases(c, [first]);
      const record = join(run.options.outputDir, `${fileStem(first.mac)}.json`);
      await waitFor('the first record', () => existsSync(record));
      rmSync(record);
      await waitFor('the record written again by reconciliation', () => existsSync(record), 10_000);

      // A notification the trigger never sent (its exception handler, a disabled trigger).
      await c.query('ALTER TABLE lease4 DISABLE TRIGGER kea_lm_lease4_notify_ins');
      await insertLeases(c, [lost]);
      await waitFor(
        'the lost lease reserved by reconciliation',
        async () => (await reservations(c)).some((r) => r.mac === lost.mac && r.ip === lost.ip),
        10_000,
      );
      assert.ok(run.monitor.metrics.value('kea_lease_monitor_reconcile_runs_total') >= 1);
      assert.ok(run.monitor.metrics.value('kea_lease_monitor_records_reconciled_total') >= 1);
      assert.ok(run.logs.some((l) => l.includes('Reconciliation done')));
    } finally {
      await c.end();
      await run.stop();
    }
  });
});
