import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OWNER_KEY } from '../src/ownership';
import { connect, TestCluster } from './helpers/pg';
import { fileStem, insertLeases, ipToInt, macHex, reservations } from './helpers/leases';
import { A, B, BIN, C, json, ownMacs, operatorRows, run, setup, writeConfig, writeRecord } from './helpers/lifecycle';

let cluster: TestCluster;
before(() => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run make build`);
  cluster = TestCluster.start();
});
after(() => cluster.stop());

for (const mode of ['database', 'file'] as const) {
  describe(`reservations list, prune, purge (${mode} mode, built binary)`, () => {
    test("list shows only own rows with liveness; prune and purge remove exactly the monitor's rows", async () => {
      const s = await setup(cluster, mode);
      const operatorBefore = await operatorRows(s.db);
      assert.equal(operatorBefore.length, 2);

      const list = json(s, ['reservations', 'list']);
      assert.deepEqual(list.at(-1), { reservations: 3, live: 1 });
      assert.deepEqual(
        list.slice(0, -1).map((l) => [l.mac, l.ip, l.subnet_id, l.live, l.source]),
        [
          [A.mac, A.ip, 1, true, 'memfile'],
          [B.mac, B.ip, 1, false, 'memfile'],
          [C.mac, C.ip, 1, false, 'memfile'],
        ],
      );
      assert.ok(list.slice(0, -1).every((l) => typeof l.host_id === 'number' && !Number.isNaN(Date.parse(String(l.created)))));

      // B was last seen 2 h ago; C's reservation was made just now (the monitor saw it live then).
      let out = json(s, ['reservations', 'prune', '--unseen-for', '1h', '--dry-run']);
      assert.deepEqual(out.at(-1), { removed: 1, dry_run: true, unseen_for_seconds: 3600, records_removed: 1 });
      assert.equal(out[0].mac, B.mac);
      assert.deepEqual(await ownMacs(s.db), [A.mac, B.mac, C.mac].sort(), 'a dry run removes nothing');

      out = json(s, ['reservations', 'prune', '--unseen-for', '1h']);
      assert.deepEqual(out.at(-1), { removed: 1, dry_run: false, unseen_for_seconds: 3600, records_removed: 1 });
      assert.deepEqual(await ownMacs(s.db), [A.mac, C.mac].sort());
      assert.ok(!existsSync(join(s.outputDir, `${fileStem(B.mac)}.json`)));

      // 0s: every own row without a live lease; a device with a live lease is never pruned.
      out = json(s, ['reservations', 'prune', '--unseen-for', '0s']);
      assert.deepEqual(
        out.map((l) => l.mac ?? l.removed),
        [C.mac, 1],
      );
      assert.deepEqual(json(s, ['reservations', 'prune', '--unseen-for', '0s']).at(-1)?.removed, 0);
      assert.deepEqual(await ownMacs(s.db), [A.mac]);
      assert.ok(existsSync(join(s.outputDir, `${fileStem(A.mac)}.json`)));

      assert.deepEqual(json(s, ['reservations', 'purge', '--dry-run']).at(-1), { removed: 1, dry_run: true, records_removed: 1 });
      assert.deepEqual(await ownMacs(s.db), [A.mac]);
      assert.deepEqual(json(s, ['reservations', 'purge']).at(-1), { removed: 1, dry_run: false, records_removed: 1 });
      assert.deepEqual(await ownMacs(s.db), []);
      assert.ok(!existsSync(join(s.outputDir, `${fileStem(A.mac)}.json`)));
      assert.deepEqual(await operatorRows(s.db), operatorBefore, "the operator's rows are exactly as they were");
      assert.deepEqual(json(s, ['reservations', 'purge']).at(-1), { removed: 0, dry_run: false, records_removed: 0 });

      // Text output, and a bad duration is a usage error.
      const text = run(s, ['reservations', 'list']);
      assert.equal(text.status, 0, text.stderr);
      assert.equal(text.stdout, '0 reservations owned by kea-lease-monitor, 0 with a live lease\n');
      const bad = run(s, ['reservations', 'prune', '--unseen-for', 'forever']);
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /--unseen-for: "forever" is not a duration/);
    });
  });
}

describe('reservations adopt (built binary)', () => {
  test('adopts only rows a "created" record vouches for, still matching host_id, MAC, subnet and address', async () => {
    const s = await setup(cluster, 'file');
    json(s, ['reservations', 'purge']);
    const c = await connect(s.db);
    const insert = async (mac: string, ip: string, ctx: string | null): Promise<number> =>
      (
        await c.query<{ host_id: number }>(
          `INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, user_context)
        VALUES (decode($1, 'hex'), 0, 1, $2, $3) RETURNING host_id`,
          [macHex(mac), ipToInt(ip), ctx],
        )
      ).rows[0].host_id;
    const E = { mac: '02:00:00:30:00:0e', ip: '10.30.0.14' };
    const F = { mac: '02:00:00:30:00:0f', ip: '10.30.0.15' };
    const G = { mac: '02:00:00:30:00:10', ip: '10.30.0.16' };
    const K = { mac: '02:00:00:30:00:11', ip: '10.30.0.17' };
    const L = { mac: '02:00:00:30:00:12', ip: '10.30.0.18' };
    writeRecord(s.outputDir, E, 'created', await insert(E.mac, E.ip, '{"note":"pre-mark"}'));
    writeRecord(s.outputDir, F, 'created', await insert(F.mac, '10.30.0.99', null)); // moved since
    writeRecord(s.outputDir, G, 'unchanged', await insert(G.mac, G.ip, null)); // no evidence of creation
    writeRecord(s.outputDir, K, 'created', await insert(K.mac, K.ip, 'not json')); // cannot be rewritten
    const lId = await insert(L.mac, L.ip, null);
    writeRecord(s.outputDir, L, 'created', lId + 1000); // host_id does not match
    const before = await reservations(c);

    const dry = json(s, ['reservations', 'adopt', '--dry-run']);
    assert.deepEqual(dry.at(-1), { adopted: 1, dry_run: true, skipped: 3 });
    assert.deepEqual(await reservations(c), before);

    const out = json(s, ['reservations', 'adopt']);
    assert.deepEqual(out.at(-1), { adopted: 1, dry_run: false, skipped: 3 });
    assert.equal(out[0].mac, E.mac);
    const after = await reservations(c);
    const e = after.find((r) => r.mac === E.mac);
    const ctx = JSON.parse(e?.user_context ?? '{}');
    assert.equal(ctx.note, 'pre-mark');
    assert.deepEqual([ctx[OWNER_KEY].created, ctx[OWNER_KEY].source], ['2025-01-01T00:00:00.000Z', 'memfile']);
    assert.deepEqual(
      after.filter((r) => r.mac !== E.mac),
      before.filter((r) => r.mac !== E.mac),
      'nothing else changed',
    );
    assert.deepEqual(json(s, ['reservations', 'adopt']).at(-1), { adopted: 0, dry_run: false, skipped: 4 });
    // Adopted rows are the monitor's: purge now takes E and nothing else.
    assert.deepEqual(json(s, ['reservations', 'purge']).at(-1)?.removed, 1);
    await c.end();
  });
});

describe('plan and --config (built binary)', () => {
  test('plan prints one decision per lease and a summary; a bad config file exits 2 naming key and file', async () => {
    const s = await setup(cluster, 'database');
    const cfg = s.configFile;
    writeConfig(s, 'subnet-id: [1]\ndeny-mac-prefix: ["02:00:00:20:00:0b"]\nmax-reservations-per-subnet: 10\n');
    const c = await connect(s.db);
    await insertLeases(c, [
      { ip: '10.20.0.50', mac: '02:00:00:20:00:50' },
      { ip: '10.20.0.51', mac: '02:00:00:20:00:51', subnet: 2, hostname: 'host-51' },
    ]);
    await c.end();
    const lines = json(s, ['plan']);
    const actions = Object.fromEntries(lines.slice(0, -1).map((l) => [l.mac, [l.action, l.reason]]));
    assert.deepEqual(Object.keys(actions).sort(), [A.mac, '02:00:00:20:00:50', '02:00:00:20:00:51'].sort(), 'live leases only');
    assert.equal(actions[A.mac][0], 'unchanged');
    assert.equal(actions['02:00:00:20:00:50'][0], 'create');
    assert.deepEqual(actions['02:00:00:20:00:51'], ['not-selected', 'subnet']);
    assert.deepEqual(lines.at(-1), {
      leases: 3,
      create: 1,
      update: 0,
      unchanged: 1,
      conflict: 0,
      foreign: 0,
      limit: 0,
      stale: 0,
      superseded: 0,
      not_selected: 1,
      pending_probe: 0,
      malformed_rows: 0,
      dry_run: true,
    });
    assert.equal(actions[A.mac][1], 'reservation-matches', 'JSON reasons are codes');
    assert.equal(actions['02:00:00:20:00:50'][1], 'no-reservation');
    // Text: the hostname, the reason in words, the summary without zero counts.
    const text = run(s, ['plan']);
    assert.equal(text.status, 0, text.stderr);
    const byMac = Object.fromEntries(
      text.stdout
        .trim()
        .split('\n')
        .map((l) => [l.split(/\s+/)[1], l]),
    );
    assert.equal(
      byMac['02:00:00:20:00:51'],
      'not-selected 02:00:00:20:00:51 10.20.0.51      subnet 2 host-51: the subnet is not in --subnet-id',
    );
    assert.equal(text.stdout.trim().split('\n').at(-1), '3 live leases: 1 create, 1 unchanged, 1 not-selected');
    assert.equal((await ownMacs(s.db)).length, 3, 'plan wrote nothing');
    // argv beats the config file.
    const wide = json(s, ['plan', '--subnet-id', '1', '--subnet-id', '2']);
    assert.equal(wide.find((l) => l.mac === '02:00:00:20:00:51')?.action, 'create');

    writeConfig(s, 'subnet-id: [1]\nallow-mac-prefx: 0c:c4:7a\n');
    let r = run(s, ['plan']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`${cfg.replace(/[.]/g, '\\.')}: unknown key "allow-mac-prefx"`));
    writeConfig(s, 'deny-hostname: "([a-z"\n');
    r = run(s, ['reservations', 'list']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /config\.yml: deny-hostname: "\(\[a-z" is not a valid regular expression/);
    r = run(s, ['--dry-run']);
    assert.equal(r.status, 2, 'the daemon refuses it too');
  });
});
