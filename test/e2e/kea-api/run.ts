// End-to-end for --writer kea-api: real kea-dhcp4 3.0.4 (Debian forky root, chrooted in a private
// network namespace) with the host_cmds hook, a real DHCP client, and the built monitor.
//   (a) PostgreSQL leases and hosts, host_cache loaded; the monitor follows NOTIFY, writes through the API
//   (b) memfile leases, MySQL (MariaDB) hosts; the monitor follows the lease file, writes through the API
// Usage: node --import tsx test/e2e/kea-api/run.ts   (root; after make build). Last line: "N passed, N failed".
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { check, summary } from '../lib/checks';
import { udhcpcOnce, UDHCPC_MAC } from '../lib/dhcp';
import { migrate, Monitor, MONITOR_BIN, startProcess } from '../lib/monitor';
import { createNet, Net, netnsUnavailable } from '../lib/netns';
import { Pg, pgEnv, query, startPg } from '../lib/pg';
import { cleanupMark, runCleanups, sleep, tempDir, waitFor } from '../lib/proc';
import { startMariaDb } from './mariadb';
import { Answer, Kea3, startKea3 } from './kea3';
import { debianRoot, runInRoot } from './root';

const READY = /Writing reservations through Kea's control socket/;
const MARK = 'kea-lease-monitor';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function metrics(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new Map<string, number>();
  for (const l of text.split('\n')) {
    const x = /^(\S+) (\S+)$/.exec(l);
    if (x && !l.startsWith('#')) m.set(x[1], Number(x[2]));
  }
  return m;
}
const sum = (m: Map<string, number>, prefix: string, filter = '') =>
  [...m].filter(([k]) => k.startsWith(prefix) && k.includes(filter)).reduce((a, [, v]) => a + v, 0);
const apiCalls = (m: Map<string, number>) => sum(m, 'kea_lease_monitor_kea_api_commands_total', 'command="reservation-');
// Outcomes carry a subnet_id label (and exist at zero without one): sum every series of that result.
const outcome = (m: Map<string, number>, r: string) => sum(m, 'kea_lease_monitor_reservations_total{', `result="${r}"`);
const received = (m: Map<string, number>) => sum(m, 'kea_lease_monitor_leases_received_total');

async function getHost(kea: Kea3, mac: string): Promise<any> {
  const a = await kea.command('reservation-get', { 'subnet-id': 1, 'identifier-type': 'hw-address', identifier: mac });
  return a.result === 0 ? a.arguments : null;
}

function startApiMonitor(kea: Kea3, out: string, port: number, env: Record<string, string>, extra: string[]): Monitor {
  const args = [
    'run',
    '--writer',
    'kea-api',
    '--kea-control-socket',
    kea.ctrlSock,
    '--output-dir',
    out,
    '--log-format',
    'json',
    '--log-level',
    'debug',
    '--metrics-port',
    String(port),
    ...extra,
  ];
  return startProcess(MONITOR_BIN, args, { ...process.env, NODE_OPTIONS: '', ...env });
}

function record(out: string, mac: string): any {
  const f = join(out, `${mac.replace(/:/g, '-')}.json`);
  return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : null;
}

/** Checks both setups share: create, renewals without calls, move (update), foreign, conflict. */
/** Kea writes each byte >= 0x80 as its own \u00XX escape; the monitor undoes that, and so does the harness. */
const keaText = (s: unknown) => (typeof s === 'string' ? Buffer.from(s, 'latin1').toString('utf8') : s);

async function common(tag: string, kea: Kea3, port: number, out: string, net: Net, dir: string, source: 'database' | 'memfile') {
  // A real client's first exchange becomes a reservation written by Kea itself.
  const ipA = await udhcpcOnce(net, dir, 'klm-e2e-a');
  const host = await waitFor(
    'reservation for the udhcpc client',
    async () => {
      const h = await getHost(kea, UDHCPC_MAC);
      return h && h['ip-address'] === ipA ? h : false;
    },
    20000,
    200,
  ).catch(() => null);
  check(`${tag}: a client's lease becomes a reservation through reservation-add`, host !== null, `${UDHCPC_MAC} ${ipA}`);
  const mark = host?.['user-context']?.[MARK];
  check(
    `${tag}: the reservation carries the ownership mark in user-context`,
    mark?.source === source && !Number.isNaN(Date.parse(mark?.created)),
    JSON.stringify(host?.['user-context'] ?? null),
  );
  // Records are written off the commit path: wait for this one.
  const rec = await waitFor('discovery record', () => record(out, UDHCPC_MAC), 10000, 100).catch(() => null);
  check(`${tag}: discovery record says created`, rec?.reservation === 'created', JSON.stringify(rec?.reservation));

  // Renewals. File mode: each exchange is a lease-file row the monitor reads and answers from what it
  // knows, without one call. Database mode: the NOTIFY trigger does not fire for a renewal at all.
  let m0 = await metrics(port);
  const renewals = 3;
  const want = source === 'memfile' ? renewals : 0;
  for (let i = 0; i < renewals; i++) await udhcpcOnce(net, dir, 'klm-e2e-a');
  await waitFor('renewals seen', async () => received(await metrics(port)) >= received(m0) + want, 15000, 200).catch(() => undefined);
  await sleep(1000);
  let m1 = await metrics(port);
  check(
    `${tag}: ${renewals} renewals cost no API call`,
    received(m1) - received(m0) === want && apiCalls(m1) === apiCalls(m0) && outcome(m1, 'unchanged') - outcome(m0, 'unchanged') === want,
    `${received(m1) - received(m0)} lease events, ${apiCalls(m1) - apiCalls(m0)} reservation-* calls, ${outcome(m1, 'unchanged') - outcome(m0, 'unchanged')} unchanged`,
  );

  // The device moves to another address: its own reservation is updated, the mark kept.
  const ipX = '10.99.200.200';
  await kea.command('lease4-del', { 'ip-address': ipA });
  const add = await kea.command('lease4-add', { 'ip-address': ipX, 'hw-address': UDHCPC_MAC, 'subnet-id': 1, hostname: 'klm-e2e-a' });
  const moved = await waitFor(
    'reservation moved',
    async () => {
      const h = await getHost(kea, UDHCPC_MAC);
      return h && h['ip-address'] === ipX ? h : false;
    },
    20000,
    200,
  ).catch(() => null);
  check(
    `${tag}: a move updates the monitor's own reservation (mark kept)`,
    moved !== null && moved['user-context']?.[MARK]?.created === mark?.created,
    `lease4-add ${add.result}; now ${moved?.['ip-address'] ?? 'unchanged'}`,
  );

  // Kea honours the updated reservation at the client's next exchange (with host_cache: the cache was updated too).
  await kea.command('lease4-del', { 'ip-address': ipX });
  const next = await udhcpcOnce(net, dir, 'klm-e2e-a').catch((e: Error) => e.message);
  check(`${tag}: the reserved client gets its reserved address on its next exchange`, next === ipX, `got ${next}, reserved ${ipX}`);

  // An operator's reservation (no mark) for a device is left alone.
  const opMac = '02:99:00:00:aa:01';
  const opAdd = await kea.command('reservation-add', {
    reservation: { 'subnet-id': 1, 'hw-address': opMac, 'ip-address': '10.99.201.1', hostname: 'operator' },
  });
  m0 = await metrics(port);
  await kea.command('lease4-add', { 'ip-address': '10.99.201.2', 'hw-address': opMac, 'subnet-id': 1, hostname: 'dynamic' });
  await waitFor('foreign outcome', async () => outcome(await metrics(port), 'foreign') > outcome(m0, 'foreign'), 15000, 200).catch(
    () => undefined,
  );
  const op = await getHost(kea, opMac);
  m1 = await metrics(port);
  check(
    `${tag}: an operator's reservation for the device is 'foreign' and untouched`,
    opAdd.result === 0 &&
      outcome(m1, 'foreign') > outcome(m0, 'foreign') &&
      op?.['ip-address'] === '10.99.201.1' &&
      op?.hostname === 'operator' &&
      !op?.['user-context'],
    `${JSON.stringify(op)} record ${record(out, opMac)?.reservation}`,
  );

  // An address an operator reserved for another device is a conflict: nothing is written.
  const otherMac = '02:99:00:00:aa:02';
  const squatter = '02:99:00:00:aa:03';
  await kea.command('reservation-add', { reservation: { 'subnet-id': 1, 'hw-address': otherMac, 'ip-address': '10.99.201.3' } });
  m0 = await metrics(port);
  await kea.command('lease4-add', { 'ip-address': '10.99.201.3', 'hw-address': squatter, 'subnet-id': 1, force: true });
  await waitFor('conflict outcome', async () => outcome(await metrics(port), 'conflict') > outcome(m0, 'conflict'), 15000, 200).catch(
    () => undefined,
  );
  m1 = await metrics(port);
  const sq = await getHost(kea, squatter);
  check(
    `${tag}: an address reserved for another identifier is a 'conflict'; nothing written`,
    outcome(m1, 'conflict') > outcome(m0, 'conflict') && sq === null,
    `conflicts +${outcome(m1, 'conflict') - outcome(m0, 'conflict')}, squatter host ${JSON.stringify(sq)}`,
  );

  // A non-ASCII hostname survives Kea's JSON (which escapes each UTF-8 byte) unchanged.
  const uniMac = '02:99:00:00:aa:04';
  await kea.command('lease4-add', { 'ip-address': '10.99.201.4', 'hw-address': uniMac, 'subnet-id': 1, hostname: 'café-ü' });
  const uni = await waitFor('unicode host', () => getHost(kea, uniMac), 15000, 200).catch(() => null);
  return { uniHostname: keaText(uni?.hostname) };
}

/**
 * Forged NOTIFYs from a role with no privilege on lease4: a device lease4 never saw (in subnet 1 and in a
 * random subnet), a move and a rename of the client's own reservation. Nothing reaches Kea, so no row
 * appears in (or changes in) the hosts table Kea writes.
 */
async function forgedNotify(tag: string, kea: Kea3, port: number, pgK: Pg) {
  const forger = { ...pgK, user: 'klm_forger' };
  await query(pgK, 'CREATE ROLE klm_forger LOGIN');
  const [{ lease4 }] = await query<{ lease4: boolean }>(forger, "SELECT has_table_privilege('lease4', 'SELECT') AS lease4");
  const own = await getHost(kea, UDHCPC_MAC);
  const ip = (s: string) => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const payload = (address: number, hwaddr: string, subnet: number, hostname: string) =>
    JSON.stringify({
      v: 1,
      op: 'insert',
      address,
      hwaddr,
      subnet_id: subnet,
      state: 0,
      valid_lifetime: 3600,
      expire: Math.floor(Date.now() / 1000) + 3600,
      hostname,
    });
  const forge = (payloads: string[]) =>
    query(forger, 'SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) AS p', ['kea_lease_events', payloads]);
  const hex = UDHCPC_MAC.replace(/:/g, '');
  const m0 = await metrics(port);
  await forge([
    payload(ip('10.99.201.100'), '02deadbeef01', 1, 'evil'),
    payload(ip('10.99.201.101'), '02deadbeef02', 4_000_000_000, 'evil'),
    payload(ip('10.99.201.102'), hex, 1, own?.hostname ?? 'x'),
  ]);
  await waitFor('forgeries judged', async () => outcome(await metrics(port), 'stale') >= outcome(m0, 'stale') + 3, 15000, 200).catch(
    () => undefined,
  );
  const m1 = await metrics(port);
  // lease4 holds the client's lease at its address: only the hostname is forged.
  await forge([payload(ip(own?.['ip-address'] ?? '0.0.0.0'), hex, 1, 'evil')]);
  await waitFor('rename judged', async () => outcome(await metrics(port), 'unchanged') > outcome(m1, 'unchanged'), 15000, 200).catch(
    () => undefined,
  );
  const m2 = await metrics(port);
  const forgedRows = await query<{ n: string }>(
    pgK,
    "SELECT count(*) AS n FROM hosts WHERE encode(dhcp_identifier, 'hex') IN ('02deadbeef01', '02deadbeef02')",
  );
  check(
    `${tag}: forged NOTIFYs from a role without privilege on lease4 reach Kea with 0 calls; no row appears in hosts`,
    lease4 === false && Number(forgedRows[0].n) === 0 && apiCalls(m2) === apiCalls(m0) && outcome(m1, 'stale') - outcome(m0, 'stale') === 3,
    `lease4 SELECT ${lease4}, ${forgedRows[0].n} forged rows, ${apiCalls(m2) - apiCalls(m0)} reservation-* calls, stale +${outcome(m1, 'stale') - outcome(m0, 'stale')}`,
  );
  const after = await getHost(kea, UDHCPC_MAC);
  check(
    `${tag}: a forged move or rename leaves the client's own reservation as it was`,
    own !== null && after?.['ip-address'] === own['ip-address'] && after?.hostname === own.hostname,
    `before ${own?.['ip-address']} ${own?.hostname}, after ${after?.['ip-address']} ${after?.hostname}`,
  );
  check(
    `${tag}: a forged subnet id gets no metric series of its own`,
    ![...m2.keys()].some((k) => k.includes('subnet_id="4000000000"')) && [...m2.keys()].some((k) => k.includes('subnet_id="other"')),
    [...m2.keys()].filter((k) => k.includes('result="stale"')).join(' '),
  );
}

async function section(tag: string, body: () => Promise<void>) {
  const mark = cleanupMark();
  try {
    await body();
  } catch (e) {
    check(`${tag}: section ran to the end`, false, (e as Error).message.split('\n')[0]);
  } finally {
    await runCleanups(mark);
  }
}

async function refuseWithoutHostCmds(tag: string, kea: Kea3, out: string) {
  // Reconfigure Kea without host_cmds: the monitor must refuse to start (exit 1, clear message).
  // (config-reload of the edited file: config-get writes cache-threshold 0.0 as 0, which config-set refuses.)
  const file = kea.configFile;
  writeFileSync(file, readFileSync(file, 'utf8').replace(/\{\s*"library": "libdhcp_host_cmds.so"\s*\},?/, ''));
  const set: Answer = await kea.command('config-reload');
  const mon = startApiMonitor(kea, out, 0, {}, ['--lease-file', kea.leaseFile]);
  await waitFor('monitor exit', () => mon.proc.exitCode !== null, 20000, 100).catch(() => undefined);
  const said = mon.lines.some((l) => /does not offer reservation-add, reservation-get, reservation-del/.test(l));
  check(
    `${tag}: without host_cmds the monitor exits 1 naming the missing commands`,
    set.result === 0 && mon.proc.exitCode === 1 && said,
    `config-reload ${set.result} ${set.text ?? ''}, exit ${mon.proc.exitCode}: ${mon.lines.slice(-1)[0]?.slice(0, 200)}`,
  );
  await mon.stop();
}

/** The API writer's sections; run.ts calls this after the per-release sections, so one closing line counts all. */
export async function keaApiSections(): Promise<void> {
  const root = await debianRoot('forky');

  const only = process.env.KEA_API_E2E_ONLY; // postgresql | mysql
  if (only !== 'mysql')
    await section('kea-api postgresql', async () => {
      const dir = tempDir('klm-kea-api-');
      const pg = await startPg(join(dir, 'pg'));
      await query(pg, 'CREATE DATABASE kea3');
      const net = await createNet('ka');
      // Kea 3.0's own schema, loaded by its own kea-admin.
      const init = await runInRoot(root, net.srv, { [pg.host]: '/run/postgresql' }, [
        'kea-admin',
        'db-init',
        'pgsql',
        '-h',
        '/run/postgresql',
        '-P',
        String(pg.port),
        '-u',
        pg.user,
        '-p',
        'unused',
        '-n',
        'kea3',
      ]);
      const kea = await startKea3({
        root,
        dir,
        net,
        leases: 'postgresql',
        hosts: 'postgresql',
        pg: { ...pg, keaDb: 'kea3' },
        hostCache: true,
      });
      const tag = `kea-dhcp4 ${kea.version} postgresql kea-api`;
      process.stdout.write(`# ${tag}\n`);
      check(
        `${tag}: Kea 3.0 schema loaded by the root's kea-admin`,
        /Schema version reported after initialization: 29/.test(init.stdout + init.stderr),
      );
      const pgK: Pg = { ...pg, database: 'kea3' };
      await migrate(pgK, true);
      const out = join(dir, 'out');
      const port = await freePort();
      const mon = startApiMonitor(kea, out, port, pgEnv(pgK), ['--use-database-events']);
      await mon.waitLog(READY, 30000);
      check(
        `${tag}: startup finds reservation-add/get/del (and reservation-update) in list-commands`,
        mon.lines.some((l) => READY.test(l) && l.includes('reservation-update')),
      );
      const { uniHostname } = await common(tag, kea, port, out, net, dir, 'database');
      const rows = await query<{ hostname: string; uc: string }>(
        pgK,
        "SELECT hostname, user_context AS uc FROM hosts WHERE dhcp_identifier = decode('029900aa04', 'hex') OR encode(dhcp_identifier,'hex') = '02990000aa04'",
      );
      check(
        `${tag}: a non-ASCII hostname reaches the hosts table as UTF-8`,
        uniHostname === 'café-ü' && rows[0]?.hostname === 'café-ü',
        `api ${String(uniHostname)}, table ${rows[0]?.hostname}`,
      );
      check(`${tag}: the mark is in hosts.user_context`, rows[0]?.uc?.includes(MARK) ?? false, rows[0]?.uc);
      await forgedNotify(tag, kea, port, pgK);
      const code = await mon.stop();
      check(`${tag}: SIGTERM stops the monitor with exit 0`, code === 0, `exit ${code}`);
    });

  if (only !== 'postgresql')
    await section('kea-api mysql', async () => {
      const dir = tempDir('klm-kea-api-');
      const net = await createNet('km');
      const maria = await startMariaDb(root, net.srv, dir);
      const kea = await startKea3({ root, dir, net, leases: 'memfile', hosts: 'mysql' });
      const tag = `kea-dhcp4 ${kea.version} mysql kea-api`;
      process.stdout.write(`# ${tag}\n`);
      const version = (await maria.sql("SELECT CONCAT(version, '') FROM schema_version")).trim();
      check(`${tag}: MariaDB from the forky root holds Kea's MySQL schema`, /^\d+$/.test(version), `schema ${version}`);
      const out = join(dir, 'out');
      const port = await freePort();
      const mon = startApiMonitor(kea, out, port, {}, ['--lease-file', kea.leaseFile]);
      await mon.waitLog(READY, 30000);
      check(
        `${tag}: file mode + API writer starts (no PostgreSQL anywhere)`,
        mon.proc.exitCode === null && mon.lines.some((l) => READY.test(l)) && !mon.lines.some((l) => /"level":"error"/.test(l)),
        mon.lines.slice(-1)[0]?.slice(0, 200),
      );
      const { uniHostname } = await common(tag, kea, port, out, net, dir, 'memfile');
      const row = (await maria.sql("SELECT HEX(hostname), user_context FROM hosts WHERE hex(dhcp_identifier) = '02990000AA04'"))
        .trim()
        .split('\t');
      check(
        `${tag}: a non-ASCII hostname reaches MySQL as UTF-8`,
        uniHostname === 'café-ü' && row[0] === Buffer.from('café-ü').toString('hex').toUpperCase(),
        `api ${String(uniHostname)}, table hex ${row[0]}`,
      );
      check(`${tag}: the mark is in hosts.user_context`, (row[1] ?? '').includes(MARK), row[1]);
      const code = await mon.stop();
      check(`${tag}: SIGTERM stops the monitor with exit 0`, code === 0, `exit ${code}`);

      // A fresh start replays the whole lease file: what Kea already holds is learned from
      // reservation-get-page at startup, so the monitor's own devices cost no call at all.
      const port2 = await freePort();
      const again = startApiMonitor(kea, join(dir, 'out-replay'), port2, {}, ['--lease-file', kea.leaseFile]);
      await again.waitLog(READY, 30000);
      await waitFor('replay written', async () => sum(await metrics(port2), 'kea_lease_monitor_reservations_total') >= 5, 15000, 200).catch(
        () => undefined,
      );
      await sleep(1000);
      const mr = await metrics(port2);
      const perDevice = apiCalls(mr) - sum(mr, 'kea_lease_monitor_kea_api_commands_total', 'command="reservation-get-page"');
      const negatives = outcome(mr, 'foreign') + outcome(mr, 'conflict');
      check(
        `${tag}: a restart's replay costs no call for the monitor's own devices`,
        outcome(mr, 'unchanged') >= 2 && perDevice <= 3 * negatives,
        `${outcome(mr, 'unchanged')} unchanged, ${negatives} foreign/conflict, ${perDevice} per-device calls`,
      );
      await again.stop();
      await refuseWithoutHostCmds(tag, kea, join(dir, 'out2'));
    });
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('run as root (network namespaces, chroot)');
  const why = await netnsUnavailable();
  if (why) throw new Error(why);
  if (!existsSync(MONITOR_BIN)) throw new Error(`${MONITOR_BIN} missing: run make build`);
  await keaApiSections();
  const s = summary();
  process.stdout.write(`${s.passed} passed, ${s.failed} failed\n`);
  return s.failed === 0 ? 0 : 1;
}

// Standalone: node --import tsx test/e2e/kea-api/run.ts
if (require.main === module)
  main().then(
    async (code) => {
      await runCleanups();
      process.exit(code);
    },
    async (e: Error) => {
      process.stderr.write(`kea-api e2e: ${e.stack ?? e.message}\n`);
      await runCleanups();
      process.exit(1);
    },
  );
