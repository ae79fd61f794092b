import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { migrate, rollback } from '../src/db/migrate';
import { listMigrations } from '../src/db/migrations';
import { readSchemaState } from '../src/db/schema';
import type { DbOptions } from '../src/options';
import { connect, TestCluster } from './helpers/pg';
import { insertLeases } from './helpers/leases';

let cluster: TestCluster;
before(() => {
  cluster = TestCluster.start();
});
after(() => cluster.stop());

function schemaDump(db: DbOptions): string {
  const dump = execFileSync('/usr/lib/postgresql/15/bin/pg_dump', ['--schema-only', '--no-owner', '-h', db.host, '-p', String(db.port), '-U', db.user, db.database], {
    encoding: 'utf8',
  });
  // pg_dump's \restrict lines carry a random key per run.
  return dump.split('\n').filter((l) => !/^\\(un)?restrict /.test(l)).join('\n');
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

describe('migrations', () => {
  test('every migration has an up and a down file', () => {
    const ids = listMigrations().map((m) => m.name);
    assert.deepEqual(ids, ['0001_hosts_identifier_arbiter', '0002_lease4_notify']);
  });

  test('are idempotent, dry runs change nothing, and rollback restores the schema exactly', async () => {
    const db = await cluster.freshDatabase();
    const pristine = schemaDump(db);
    const c = await connect(db);
    try {
      const dry = await migrate(c, { notify: true, dryRun: true });
      assert.deepEqual(dry, { changed: true, steps: ['0002_lease4_notify'], dry_run: true });
      assertSameSchema(schemaDump(db), pristine, 'a dry run must not change the schema');

      const first = await migrate(c, { notify: true, dryRun: false });
      // Kea's own partial unique index is the arbiter: 0001 has nothing to add on the real schema.
      assert.deepEqual(first.steps, ['0002_lease4_notify']);
      assert.equal((await readSchemaState(c)).notifyTrigger, true);
      const second = await migrate(c, { notify: true, dryRun: false });
      assert.deepEqual(second, { changed: false, steps: [], dry_run: false });

      const dryBack = await rollback(c, { dropConstraint: true, dryRun: true });
      assert.equal(dryBack.changed, true);
      assert.equal((await readSchemaState(c)).notifyTrigger, true);

      const back = await rollback(c, { dropConstraint: true, dryRun: false });
      assert.deepEqual(back.steps, ['0002_lease4_notify']);
      assert.equal((await rollback(c, { dropConstraint: true, dryRun: false })).changed, false);
      assertSameSchema(schemaDump(db), pristine, 'rollback must restore the schema exactly');
      const kea = await c.query(`SELECT 1 FROM pg_indexes WHERE indexname = 'key_dhcp4_identifier_subnet_id'`);
      assert.equal(kea.rowCount, 1, "Kea's own index is never dropped");
    } finally {
      await c.end();
    }
  });

  test('add the named constraint only where no equivalent unique index exists, and drop only it', async () => {
    const db = await cluster.freshDatabase();
    const c = await connect(db);
    try {
      await c.query('DROP INDEX key_dhcp4_identifier_subnet_id');
      const withoutArbiter = schemaDump(db);
      assert.equal((await readSchemaState(c)).arbiter.kind, 'none');
      const r = await migrate(c, { notify: false, dryRun: false });
      assert.deepEqual(r.steps, ['0001_hosts_identifier_arbiter']);
      const state = await readSchemaState(c);
      assert.deepEqual([state.arbiter.kind, state.arbiter.name], ['constraint', 'hosts_dhcp_identifier_subnet_unique']);
      assert.equal((await migrate(c, { notify: false, dryRun: false })).changed, false);
      // Without --drop-constraint the rollback keeps it.
      assert.equal((await rollback(c, { dropConstraint: false, dryRun: false })).changed, false);
      assert.deepEqual((await rollback(c, { dropConstraint: true, dryRun: false })).steps, ['0001_hosts_identifier_arbiter']);
      assertSameSchema(schemaDump(db), withoutArbiter, 'rollback --drop-constraint restores the schema');
    } finally {
      await c.end();
    }
  });

  test('the trigger fires on inserts and meaningful updates with a JSON payload, not on renewals', async () => {
    const db = await cluster.freshDatabase();
    const c = await connect(db);
    const writer = await connect(db);
    try {
      await migrate(c, { notify: true, dryRun: false });
      const onInsert = await collectNotifications(c, () =>
        insertLeases(writer, [{ ip: '10.9.0.1', mac: 'aa:bb:cc:dd:ee:01', hostname: 'h1', subnet: 3 }]));
      assert.equal(onInsert.length, 1);
      const p = JSON.parse(onInsert[0]);
      assert.deepEqual([p.v, p.op, p.address, p.hwaddr, p.subnet_id, p.state, p.hostname], [1, 'insert', 168361985, 'aabbccddee01', 3, 0, 'h1']);
      assert.ok(onInsert[0].length < 8000);

      const onRenewal = await collectNotifications(c, async () => {
        await writer.query(`UPDATE lease4 SET expire = expire + interval '1 hour', valid_lifetime = 7200 WHERE address = 168361985`);
      });
      assert.deepEqual(onRenewal, [], 'renewals must not notify');

      const onChange = await collectNotifications(c, async () => {
        await writer.query(`UPDATE lease4 SET hwaddr = '\\xaabbccddee02', hostname = 'h2' WHERE address = 168361985`);
        await writer.query(`UPDATE lease4 SET state = 2, hostname = NULL WHERE address = 168361985`);
      });
      assert.deepEqual(onChange.map((x) => JSON.parse(x).op), ['update', 'update']);
      assert.equal(JSON.parse(onChange[1]).state, 2);

      // The longest possible payload stays far below NOTIFY's limit.
      const longest = await collectNotifications(c, () =>
        insertLeases(writer, [{ ip: '10.9.0.2', mac: 'ff:ff:ff:ff:ff:ff', hostname: '\u00e9'.repeat(255), subnet: 4294967295 }]));
      assert.ok(Buffer.byteLength(longest[0]) < 2000, `payload is ${Buffer.byteLength(longest[0])} bytes`);
    } finally {
      await c.end();
      await writer.end();
    }
  });

  test("Kea's lease write succeeds even when the trigger's payload builder is broken on purpose", async () => {
    const db = await cluster.freshDatabase();
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
      assert.ok(warnings.some((w) => w.includes('lease4 notification skipped')), 'the failure is reported as a warning');

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
    const db = await cluster.freshDatabase();
    const c = await connect(db);
    try {
      await migrate(c, { notify: true, dryRun: false });
      const { rows } = await c.query<{ tgname: string }>(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'lease4'::regclass AND NOT tgisinternal ORDER BY 1`);
      assert.deepEqual(rows.map((r) => r.tgname), ['kea_lm_lease4_notify_ins', 'kea_lm_lease4_notify_upd', 'lease4_adel', 'lease4_ains', 'lease4_aupd']);
    } finally {
      await c.end();
    }
  });
});
