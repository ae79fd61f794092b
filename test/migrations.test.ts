import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { migrate, rollback } from '../src/db/migrate';
import {
  ARBITER_MIGRATION,
  listMigrations,
  NOTIFY_MIGRATION,
  VERSION_MIGRATION,
  WRITER_FUNCTIONS_MIGRATION,
  WRITER_MIGRATION,
} from '../src/db/migrations';
import { WRITE_FUNCTION } from '../src/db/reservations';
import { buildMigrationsVersion, readMigrationsVersion } from '../src/db/migrations-version';
import { readSchemaState } from '../src/db/schema';
import { FatalError } from '../src/errors';
import type { DbOptions } from '../src/options';
import { connect, keaSchemas, TestCluster } from './helpers/pg';
import { insertLeases } from './helpers/leases';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

function schemaDump(db: DbOptions): string {
  // The cluster's own pg_dump: the same major version as the server.
  const dump = execFileSync(
    cluster.bin('pg_dump'),
    ['--schema-only', '--no-owner', '-h', db.host, '-p', String(db.port), '-U', db.user, db.database],
    {
      encoding: 'utf8',
    },
  );
  // pg_dump's \restrict lines carry a random key per run.
  return dump
    .split('\n')
    .filter((l) => !/^\\(un)?restrict /.test(l))
    .join('\n');
}

/** Fails with only the lines that differ, not two 200 kB dumps. */
function assertSameSchema(actual: string, expected: string, message: string): void {
  const a = new Set(actual.split('\n'));
  const e = new Set(expected.split('\n'));
  const extra = [...a].filter((l) => !e.has(l));
  const missing = [...e].filter((l) => !a.has(l));
  assert.deepEqual({ extra, missing }, { extra: [], missing: [] }, message);
  assert.equal(actual.length, expected.length, message);
}

async function collectNotifications(c: pg.Client, action: () => Promise<void>): Promise<string[]> {
  const got: string[] = [];
  const on = (m: pg.Notification): void => void got.push(m.payload ?? '');
  c.on('notification', on);
  await c.query('LISTEN kea_lease_events');
  await action();
  await new Promise((r) => setTimeout(r, 200));
  c.off('notification', on);
  await c.query('UNLISTEN kea_lease_events');
  return got;
}

describe('migrations files', () => {
  test('are numbered 0001, 0002, ... without gaps, each with an up and a down file; the build version is the highest', () => {
    const all = listMigrations();
    assert.ok(all.length >= 3);
    all.forEach((m, i) => {
      assert.equal(m.id, String(i + 1).padStart(4, '0'), `migration ${m.name} out of sequence`);
      assert.match(m.name, /^\d{4}_[a-z0-9_]+$/);
      assert.ok(m.up.trim() && m.down.trim(), `${m.name} has SQL both ways`);
    });
    for (const id of [ARBITER_MIGRATION, NOTIFY_MIGRATION, VERSION_MIGRATION, WRITER_FUNCTIONS_MIGRATION, WRITER_MIGRATION])
      assert.ok(
        all.some((m) => m.id === id),
        id,
      );
    assert.equal(buildMigrationsVersion(), all.length);
    assert.throws(() => listMigrations({ '0001_a.up.sql': 'SELECT 1' }), /needs both/);
    assert.throws(() => listMigrations({ 'one.sql': 'SELECT 1' }), /NNNN_name/);
  });
});

// Every tested Kea release's schema (2.2 / 2.6 / 3.0).
for (const schema of keaSchemas())
  describe(`${schema.label}: migrations`, () => {
    const V = buildMigrationsVersion();
    const versionStep = listMigrations().find((m) => m.id === VERSION_MIGRATION)!.name;
    const notifyStep = listMigrations().find((m) => m.id === NOTIFY_MIGRATION)!.name;
    const functionsStep = listMigrations().find((m) => m.id === WRITER_FUNCTIONS_MIGRATION)!.name;
    const writerStep = listMigrations().find((m) => m.id === WRITER_MIGRATION)!.name;

    test('are idempotent, dry runs change nothing, and rollback restores the schema exactly', async () => {
      const db = await cluster.freshDatabase(schema, { pristine: true });
      const pristine = schemaDump(db);
      const c = await connect(db);
      try {
        const dry = await migrate(c, { notify: true, dryRun: true });
        assert.deepEqual(dry, { changed: true, steps: [notifyStep, functionsStep, writerStep, versionStep], dry_run: true });
        assertSameSchema(schemaDump(db), pristine, 'a dry run must not change the schema');
        assert.equal(await readMigrationsVersion(c), null);

        const first = await migrate(c, { notify: true, dryRun: false });
        // Kea's own partial unique index is the arbiter: 0001 has nothing to add on the real schema.
        assert.deepEqual(first.steps, [notifyStep, functionsStep, writerStep, versionStep]);
        assert.equal((await readSchemaState(c)).notifyTrigger, true);
        assert.equal(await readMigrationsVersion(c), V, 'the migrations version is recorded');
        const second = await migrate(c, { notify: true, dryRun: false });
        assert.deepEqual(second, { changed: false, steps: [], dry_run: false });

        const dryBack = await rollback(c, { dropConstraint: true, dryRun: true });
        assert.equal(dryBack.changed, true);
        assert.equal((await readSchemaState(c)).notifyTrigger, true);

        const back = await rollback(c, { dropConstraint: true, dryRun: false });
        assert.deepEqual(back.steps, [versionStep, writerStep, functionsStep, notifyStep]);
        assert.equal((await rollback(c, { dropConstraint: true, dryRun: false })).changed, false);
        assertSameSchema(schemaDump(db), pristine, 'rollback must restore the schema exactly');
        const kea = await c.query(`SELECT 1 FROM pg_indexes WHERE indexname = 'key_dhcp4_identifier_subnet_id'`);
        assert.equal(kea.rowCount, 1, "Kea's own index is never dropped");
      } finally {
        await c.end();
      }
    });

    test('rollback --notify-only drops just the trigger, so a file-mode deploy run twice changes nothing', async () => {
      const db = await cluster.freshDatabase(schema, { pristine: true });
      const c = await connect(db);
      try {
        await migrate(c, { notify: true, dryRun: false });
        // What the Ansible role runs on every file-mode deploy: migrate, then drop a trigger an event-mode deploy left.
        assert.deepEqual((await rollback(c, { dropConstraint: false, notifyOnly: true, dryRun: false })).steps, [notifyStep]);
        assert.equal((await readSchemaState(c)).notifyTrigger, false);
        assert.equal((await migrate(c, { notify: false, dryRun: false })).changed, false, 'the migrations version is still recorded');
        assert.equal((await rollback(c, { dropConstraint: false, notifyOnly: true, dryRun: false })).changed, false);
      } finally {
        await c.end();
      }
    });

    test('replace the first reservation writer (no lease4_hostname in its result) and then change nothing', async () => {
      const db = await cluster.freshDatabase(schema, { pristine: true });
      const c = await connect(db);
      try {
        // The shape an earlier build's 0004 installed: same arguments, a result without lease4_hostname.
        await c.query(`CREATE FUNCTION ${WRITE_FUNCTION}
          RETURNS TABLE (idx int, action text, own_id int, holder_id int, host_id int, inserted boolean)
          LANGUAGE sql AS 'SELECT 0, ''stale''::text, NULL::int, NULL::int, NULL::int, NULL::boolean'`);
        const first = await migrate(c, { notify: false, dryRun: false });
        assert.ok(first.steps.includes(writerStep), first.steps.join(','));
        const { rows } = await c.query<{ result: string }>('SELECT pg_get_function_result(to_regprocedure($1)) AS result', [
          WRITE_FUNCTION,
        ]);
        assert.match(rows[0].result, /lease4_hostname text/);
        assert.equal((await migrate(c, { notify: false, dryRun: false })).changed, false, 'a rerun changes nothing');
      } finally {
        await c.end();
      }
    });

    test('add the named constraint only where no equivalent unique index exists, and drop only it', async () => {
      const db = await cluster.freshDatabase(schema, { pristine: true });
      const c = await connect(db);
      try {
        await c.query('DROP INDEX key_dhcp4_identifier_subnet_id');
        const withoutArbiter = schemaDump(db);
        assert.equal((await readSchemaState(c)).arbiter.kind, 'none');
        const r = await migrate(c, { notify: false, dryRun: false });
        assert.deepEqual(r.steps, ['0001_hosts_identifier_arbiter', functionsStep, writerStep, versionStep]);
        const state = await readSchemaState(c);
        assert.deepEqual([state.arbiter.kind, state.arbiter.name], ['constraint', 'hosts_dhcp_identifier_subnet_unique']);
        assert.equal((await migrate(c, { notify: false, dryRun: false })).changed, false);
        // Without --drop-constraint the rollback keeps it (and forgets the migrations version).
        assert.deepEqual((await rollback(c, { dropConstraint: false, dryRun: false })).steps, [versionStep, writerStep, functionsStep]);
        assert.equal((await readSchemaState(c)).arbiter.kind, 'constraint');
        assert.deepEqual((await rollback(c, { dropConstraint: true, dryRun: false })).steps, ['0001_hosts_identifier_arbiter']);
        assertSameSchema(schemaDump(db), withoutArbiter, 'rollback --drop-constraint restores the schema');
      } finally {
        await c.end();
      }
    });

    test('the trigger fires on inserts and meaningful updates with a JSON payload, not on renewals', async () => {
      const db = await cluster.freshDatabase(schema, { pristine: true });
      const c = await connect(db);
      const writer = await connect(db);
      try {
        await migrate(c, { notify: true, dryRun: false });
        const onInsert = await collectNotifications(c, () =>
          insertLeases(writer, [{ ip: '10.9.0.1', mac: 'aa:bb:cc:dd:ee:01', hostname: 'h1', subnet: 3 }]),
        );
        assert.equal(onInsert.length, 1);
        const p = JSON.parse(onInsert[0]);
        assert.deepEqual(
          [p.v, p.op, p.address, p.hwaddr, p.subnet_id, p.state, p.hostname],
          [1, 'insert', 168361985, 'aabbccddee01', 3, 0, 'h1'],
        );
        assert.ok(onInsert[0].length < 8000);

        const onRenewal = await collectNotifications(c, async () => {
          await writer.query(`UPDATE lease4 SET expire = expire + interval '1 hour', valid_lifetime = 7200 WHERE address = 168361985`);
        });
        assert.deepEqual(onRenewal, [], 'renewals must not notify');

        const onChange = await collectNotifications(c, async () => {
          await writer.query(`UPDATE lease4 SET hwaddr = '\\xaabbccddee02', hostname = 'h2' WHERE address = 168361985`);
          await writer.query(`UPDATE lease4 SET state = 2, hostname = NULL WHERE address = 168361985`);
        });
        assert.deepEqual(
          onChange.map((x) => JSON.parse(x).op),
          ['update', 'update'],
        );
        assert.equal(JSON.parse(onChange[1]).state, 2);

        // The longest possible payload stays far below NOTIFY's limit.
        const longest = await collectNotifications(c, () =>
          insertLeases(writer, [{ ip: '10.9.0.2', mac: 'ff:ff:ff:ff:ff:ff', hostname: '\u00e9'.repeat(255), subnet: 4294967295 }]),
        );
        assert.ok(Buffer.byteLength(longest[0]) < 2000, `payload is ${Buffer.byteLength(longest[0])} bytes`);
      } finally {
        await c.end();
        await writer.end();
      }
    });

    test("Kea's lease write succeeds even when the trigger's payload builder is broken on purpose", async () => {
      const db = await cluster.freshDatabase(schema, { pristine: true });
      const c = await connect(db);
      try {
        await migrate(c, { notify: true, dryRun: false });
        // The seed's mistake: a column lease4 does not have.
        await c.query(`CREATE OR REPLACE FUNCTION kea_lm_lease4_payload(op text, address bigint, hwaddr bytea, subnet_id bigint, state bigint,
          valid_lifetime bigint, expire timestamptz, hostname text) RETURNS text LANGUAGE plpgsql AS $$
        BEGIN RETURN (SELECT lease_id FROM lease4 LIMIT 1)::text; END $$`);
        const warnings: string[] = [];
        c.on('notice', (n) => warnings.push(n.message ?? ''));
        await insertLeases(c, [{ ip: '10.9.1.1', mac: 'aa:bb:cc:dd:ee:10' }]);
        await c.query(`UPDATE lease4 SET hostname = 'changed' WHERE address = $1`, [168362241]);
        const { rows } = await c.query('SELECT count(*)::int AS n FROM lease4 WHERE address = 168362241');
        assert.equal(rows[0].n, 1, 'the lease must be stored');
        assert.ok(
          warnings.some((w) => w.includes('lease4 notification skipped')),
          'the failure is reported as a warning',
        );

        // Even a builder that raises outright cannot abort the write.
        await c.query(`CREATE OR REPLACE FUNCTION kea_lm_lease4_payload(op text, address bigint, hwaddr bytea, subnet_id bigint, state bigint,
          valid_lifetime bigint, expire timestamptz, hostname text) RETURNS text LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'broken on purpose'; END $$`);
        await insertLeases(c, [{ ip: '10.9.1.2', mac: 'aa:bb:cc:dd:ee:11' }]);
        const n = await c.query('SELECT count(*)::int AS n FROM lease4');
        assert.equal(n.rows[0].n, 2);
      } finally {
        await c.end();
      }
    });

    test("trigger names do not clash with Kea's own lease4 triggers", async () => {
      const db = await cluster.freshDatabase(schema, { pristine: true });
      const c = await connect(db);
      try {
        await migrate(c, { notify: true, dryRun: false });
        const { rows } = await c.query<{ tgname: string }>(
          `SELECT tgname FROM pg_trigger WHERE tgrelid = 'lease4'::regclass AND NOT tgisinternal ORDER BY 1`,
        );
        const ours = rows.map((r) => r.tgname).filter((n) => n.startsWith('kea_lm_'));
        assert.deepEqual(ours, ['kea_lm_lease4_notify_ins', 'kea_lm_lease4_notify_upd']);
        const kea = rows.map((r) => r.tgname).filter((n) => !n.startsWith('kea_lm_'));
        assert.ok(kea.length >= 3 && kea.every((n) => !/kea_lm/.test(n)), `Kea's own triggers: ${kea.join(', ')}`);
      } finally {
        await c.end();
      }
    });

    test("a trigger whose definition differs from this build's is replaced; an unchanged one is left alone", async () => {
      const db = await cluster.freshDatabase(schema, { pristine: true });
      const c = await connect(db);
      try {
        await migrate(c, { notify: true, dryRun: false });
        const def = async () =>
          (await c.query<{ d: string }>(`SELECT pg_get_triggerdef(oid) AS d FROM pg_trigger WHERE tgname = 'kea_lm_lease4_notify_upd'`))
            .rows[0].d;
        const good = await def();
        // An older build's trigger: same name, another WHEN clause, no marker comment.
        await c.query('DROP TRIGGER kea_lm_lease4_notify_upd ON lease4');
        await c.query(`CREATE TRIGGER kea_lm_lease4_notify_upd AFTER UPDATE ON lease4 FOR EACH ROW
        WHEN (OLD.hwaddr IS DISTINCT FROM NEW.hwaddr) EXECUTE FUNCTION kea_lm_lease4_notify()`);
        assert.notEqual(await def(), good);
        assert.deepEqual((await migrate(c, { notify: true, dryRun: false })).steps, [notifyStep]);
        assert.equal(await def(), good, "the definition is this build's again");
        // Changed by hand, marker comment kept: the rendered definition no longer matches it.
        const note = (
          await c.query(`SELECT obj_description(oid, 'pg_trigger') AS n FROM pg_trigger WHERE tgname = 'kea_lm_lease4_notify_upd'`)
        ).rows[0].n;
        await c.query('DROP TRIGGER kea_lm_lease4_notify_upd ON lease4');
        await c.query(
          `CREATE TRIGGER kea_lm_lease4_notify_upd AFTER UPDATE ON lease4 FOR EACH ROW EXECUTE FUNCTION kea_lm_lease4_notify()`,
        );
        await c.query(`COMMENT ON TRIGGER kea_lm_lease4_notify_upd ON lease4 IS '${note}'`);
        assert.deepEqual((await migrate(c, { notify: true, dryRun: false })).steps, [notifyStep]);
        assert.equal(await def(), good);
        assert.equal((await migrate(c, { notify: true, dryRun: false })).changed, false);
      } finally {
        await c.end();
      }
    });

    test('a database migrated by a newer build is refused by migrate and rollback; an older version is brought up to date', async () => {
      const db = await cluster.freshDatabase(schema, { pristine: true });
      const c = await connect(db);
      try {
        await migrate(c, { notify: false, dryRun: false });
        await c.query('UPDATE kea_lm_schema SET migrations = $1', [V + 1]);
        for (const attempt of [
          () => migrate(c, { notify: true, dryRun: false }),
          () => rollback(c, { dropConstraint: true, dryRun: false }),
        ]) {
          await assert.rejects(
            attempt(),
            (err: unknown) => err instanceof FatalError && err.message.includes(`migrations ${V + 1}, newer than this build's ${V}`),
          );
        }
        assert.equal((await readSchemaState(c)).notifyTrigger, false, 'nothing was applied');
        await c.query('UPDATE kea_lm_schema SET migrations = $1', [V - 1]);
        assert.deepEqual((await migrate(c, { notify: false, dryRun: false })).steps, [versionStep]);
        assert.equal(await readMigrationsVersion(c), V);
      } finally {
        await c.end();
      }
    });
  });
