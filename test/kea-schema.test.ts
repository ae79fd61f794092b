import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dbMigrate, dbStatus } from '../src/commands/db';
import { judgeKeaSchema, NEWEST_TESTED_SCHEMA, OLDEST_SCHEMA } from '../src/db/kea-schema';
import { migrate } from '../src/db/migrate';
import { buildMigrationsVersion, judgeMigrations } from '../src/db/migrations-version';
import { FatalError } from '../src/errors';
import type { DbOptions } from '../src/options';
import { connect, keaSchemas, TestCluster } from './helpers/pg';
import { startMonitor, testOptions } from './helpers/monitor';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

const v = (major: number, minor: number) => ({ major, minor, text: `${major}.${minor}` });

describe('Kea schema verdicts', () => {
  test('13.0 to the newest tested are accepted; older, newer and none are refused unless allowed', () => {
    assert.equal(judgeKeaSchema(v(OLDEST_SCHEMA.major, OLDEST_SCHEMA.minor), false).level, 'ok');
    assert.equal(judgeKeaSchema(v(22, 2), false).level, 'ok');
    assert.equal(judgeKeaSchema(v(NEWEST_TESTED_SCHEMA.major, NEWEST_TESTED_SCHEMA.minor), false).level, 'ok');
    const old = judgeKeaSchema(v(12, 9), false);
    assert.equal(old.level, 'refuse');
    assert.match(old.message, /Kea schema 12\.9 is older than 13\.0.*--allow-untested-schema/);
    const newer = judgeKeaSchema(v(NEWEST_TESTED_SCHEMA.major, NEWEST_TESTED_SCHEMA.minor + 1), false);
    assert.equal(newer.level, 'refuse');
    assert.match(newer.message, /newer than 29\.0, the newest tested/);
    assert.equal(judgeKeaSchema(v(34, 0), true).level, 'warn');
    assert.equal(judgeKeaSchema(v(12, 0), true).level, 'warn');
    assert.equal(judgeKeaSchema(null, true).level, 'refuse', 'no Kea schema at all is never run on');
  });

  test('the migrations version: newer in the database refuses, older or none warns naming db migrate', () => {
    assert.equal(judgeMigrations(3, 3).level, 'ok');
    assert.equal(judgeMigrations(4, 3).level, 'refuse');
    for (const w of [judgeMigrations(2, 3), judgeMigrations(null, 3)]) {
      assert.equal(w.level, 'warn');
      assert.match(w.message, /db migrate/);
    }
  });

  test('every schema make test loads is within the tested range', () => {
    for (const s of keaSchemas()) {
      const [major, minor] = s.version.split('.').map(Number);
      assert.equal(judgeKeaSchema(v(major, minor), false).level, 'ok', s.label);
    }
  });
});

async function withSchemaVersion(major: number, minor: number): Promise<DbOptions> {
  const db = await cluster.freshDatabase();
  await cluster.sql(db.database, 'UPDATE schema_version SET version = $1, minor = $2', [major, minor]);
  return db;
}

for (const schema of keaSchemas())
  describe(`${schema.label}: schema version found`, () => {
    test('db status names it (text and JSON); run logs it and sets the gauge', async () => {
      const db = await cluster.freshDatabase(schema);
      const before = await dbStatus(db);
      assert.equal(before.json.schema_version, schema.version);
      assert.equal(before.json.schema_check, 'ok');
      assert.equal(before.json.migrations_version, null);
      assert.match(before.text, new RegExp(`^schema_version:  ${schema.version.replace('.', '\\.')}$`, 'm'));
      assert.match((before.warnings ?? []).join('\n'), /^warning: .*db migrate/);
      assert.ok(!/^warning:/m.test(before.text), 'warnings go to stderr, not into the status');
      assert.ok(!('changed' in before.json), 'a read-only command has no "changed"');
      assert.equal(before.refusal, undefined);

      await dbMigrate(db, true, false);
      const st = await dbStatus(db);
      assert.deepEqual(
        [st.json.migrations_version, st.json.build_migrations_version, st.json.warnings],
        [buildMigrationsVersion(), buildMigrationsVersion(), []],
      );

      const run = await startMonitor(testOptions(db, { useDatabaseEvents: true }));
      try {
        const line = run.logs.map((l) => JSON.parse(l)).find((l) => l.message === 'Kea database schema');
        assert.equal(line?.schema_version, schema.version);
        assert.equal(run.monitor.metrics.value('kea_lease_monitor_schema_version'), Number(schema.version));
        assert.equal(run.monitor.metrics.value('kea_lease_monitor_migrations_version'), buildMigrationsVersion());
      } finally {
        await run.stop();
      }
    });
  });

describe('an untested Kea schema', () => {
  for (const [major, minor] of [
    [12, 0],
    [NEWEST_TESTED_SCHEMA.major + 1, 0],
  ]) {
    test(`schema ${major}.${minor}: run and db migrate refuse; --allow-untested-schema runs with a warning`, async () => {
      const db = await withSchemaVersion(major, minor);
      await assert.rejects(
        startMonitor(testOptions(db)),
        (err: unknown) =>
          err instanceof FatalError &&
          err.message.includes(`Kea schema ${major}.${minor}`) &&
          err.message.includes('--allow-untested-schema'),
      );
      await assert.rejects(
        dbMigrate(db, true, false),
        (err: unknown) => err instanceof FatalError && err.message.includes(`Kea schema ${major}.${minor}`),
      );
      const st = await dbStatus(db);
      assert.equal(st.json.schema_check, 'refuse');
      assert.match(st.refusal ?? '', new RegExp(`Kea schema ${major}\\.${minor}`));

      assert.equal((await dbMigrate(db, false, false, true)).json.changed, true);
      const run = await startMonitor(testOptions(db, { allowUntestedSchema: true }));
      try {
        assert.ok(
          run.logs.some((l) => l.includes('"level":"warn"') && l.includes('running anyway (--allow-untested-schema)')),
          run.logs.join('\n'),
        );
      } finally {
        await run.stop();
      }
    });
  }

  test('a runtime role that may not read schema_version: run warns and starts (the check is skipped, not failed)', async () => {
    const db = await cluster.freshDatabase();
    await cluster
      .sql(db.database, `CREATE ROLE klm_narrow_${process.pid} LOGIN; GRANT SELECT ON lease4 TO klm_narrow_${process.pid}`)
      .catch(() => undefined);
    const run = await startMonitor(testOptions({ ...db, user: `klm_narrow_${process.pid}` }));
    try {
      assert.ok(
        run.logs.some((l) => l.includes('"level":"warn"') && l.includes('GRANT SELECT ON schema_version')),
        run.logs.join('\n'),
      );
    } finally {
      await run.stop();
    }
  });

  test('a database migrated by a newer build: run refuses and db status exits 1', async () => {
    const db = await cluster.freshDatabase();
    const c = await connect(db);
    await migrate(c, { notify: false, dryRun: false });
    await c.query('UPDATE kea_lm_schema SET migrations = migrations + 1');
    await c.end();
    await assert.rejects(
      startMonitor(testOptions(db)),
      (err: unknown) => err instanceof FatalError && /newer than this build's/.test(err.message),
    );
    assert.match((await dbStatus(db)).refusal ?? '', /newer than this build's/);
  });
});
