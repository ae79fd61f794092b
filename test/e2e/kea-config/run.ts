// End-to-end for --kea-control-socket with the SQL writer: real kea-dhcp4 (2.2, 2.6 or 3.0) configured
// several ways, the built monitor reading its configuration through config-get, and udhcpc as the client.
// For each configuration: the verdict the daemon logs and exports, the verdict `plan --json` prints,
// and what Kea then really does:
//   honoured                 the monitor reserves, and the client gets its reserved address back after its lease is deleted
//   not honoured             the monitor refuses (no hosts row, counted), and Kea really ignores a reservation there
//                            (an operator's out-of-pool reservation for the same MAC is not handed out)
//   out-of-pool on           honoured, with a warning for the in-pool address, which Kea indeed does not hand back
import { join } from 'node:path';
import { createServer } from 'node:net';
import { check } from '../lib/checks';
import { udhcpcOnce, UDHCPC_MAC } from '../lib/dhcp';
import { Kea, startKea } from '../lib/kea';
import { keaRelease, KeaRelease } from '../lib/kea-release';
import { migrate, Monitor, MONITOR_BIN, startProcess } from '../lib/monitor';
import { Net } from '../lib/netns';
import { Pg, pgEnv, query, startPg } from '../lib/pg';
import { run, tempDir, waitFor } from '../lib/proc';

type Obj = Record<string, unknown>;
type Verdict = 'honoured' | 'no-hw-address-identifier' | 'reservations-disabled' | 'global-only';

interface Case {
  name: string;
  verdict: Verdict;
  /** reservations-out-of-pool on: honoured, but the in-pool address is ignored by Kea. */
  outOfPool?: boolean;
  configure: (dhcp4: Obj) => void;
}

const WATCHING = /Watching the lease file/;
const OPERATOR_IP = '10.99.0.77'; // outside the pool (10.99.1.0 - ...): only a reservation can hand it out
const subnet1 = (d: Obj) => (d.subnet4 as Obj[])[0];

function cases(release: KeaRelease): Case[] {
  const list: Case[] = [
    { name: 'defaults', verdict: 'honoured', configure: () => undefined },
    {
      name: 'host-reservation-identifiers without hw-address',
      verdict: 'no-hw-address-identifier',
      configure: (d) => (d['host-reservation-identifiers'] = ['client-id', 'duid']),
    },
    {
      name: 'reservations-in-subnet false in the subnet',
      verdict: 'reservations-disabled',
      configure: (d) => (subnet1(d)['reservations-in-subnet'] = false),
    },
    {
      name: 'reservations-in-subnet false globally, reservations-global true',
      verdict: 'global-only',
      configure: (d) => Object.assign(d, { 'reservations-in-subnet': false, 'reservations-global': true }),
    },
    {
      name: 'reservations-out-of-pool true globally',
      verdict: 'honoured',
      outOfPool: true,
      configure: (d) => (d['reservations-out-of-pool'] = true),
    },
  ];
  // reservation-mode is gone from Kea 2.6 on (its parser rejects it).
  if (release.startsWith('2.2.'))
    list.push(
      {
        name: 'reservation-mode disabled in the subnet',
        verdict: 'reservations-disabled',
        configure: (d) => (subnet1(d)['reservation-mode'] = 'disabled'),
      },
      {
        name: 'reservation-mode disabled globally, reservations-in-subnet true in the subnet',
        verdict: 'honoured',
        configure: (d) => {
          d['reservation-mode'] = 'disabled';
          subnet1(d)['reservations-in-subnet'] = true;
        },
      },
    );
  return list;
}

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

async function metric(port: number, series: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

const macHex = UDHCPC_MAC.replace(/:/g, '');

async function reservedIp(pg: Pg): Promise<string | undefined> {
  const rows = await query<{ ip: string }>(
    pg,
    "SELECT host('0.0.0.0'::inet + ipv4_address) AS ip FROM hosts WHERE dhcp_identifier = decode($1, 'hex') AND dhcp_identifier_type = 0",
    [macHex],
  );
  return rows[0]?.ip;
}

// plan reads the lease file but keeps no read position: it refuses --state-file (exit 2).
function monitorArgs(kea: Kea, out: string, extra: string[], command: 'run' | 'plan' = 'run'): string[] {
  return [
    '--lease-file',
    kea.leaseFile,
    ...(command === 'run' ? ['--state-file', join(out, 'position.json')] : []),
    '--output-dir',
    out,
    '--kea-control-socket',
    kea.ctrlSock,
    '--subnet-id',
    '1',
    ...extra,
  ];
}

async function oneCase(c: Case, release: KeaRelease, net: Net, pg: Pg): Promise<void> {
  const tag = `kea-config ${release} "${c.name}"`;
  await query(pg, 'DELETE FROM hosts');
  const dir = tempDir('lmk-e2e-kcfg-');
  const kea = await startKea({ release, dir, net, pg, backend: 'memfile', configure: c.configure });
  const out = join(dir, 'discovery');
  const port = await freePort();
  const env = { ...process.env, ...pgEnv(pg), NODE_OPTIONS: '' };
  const mon: Monitor = startProcess(
    MONITOR_BIN,
    ['run', ...monitorArgs(kea, out, ['--log-format', 'json', '--metrics-port', String(port)])],
    env,
  );
  try {
    await mon.waitLog(WATCHING, 15000);
    const honoured = await metric(port, 'kea_lease_monitor_subnet_reservations_honoured{subnet_id="1"}');
    const warned = mon.lines.filter((l) => /would not honour reservations in this subnet/.test(l));
    const expectWarn = c.verdict !== 'honoured';
    check(
      `${tag}: the daemon's verdict for subnet 1 is ${c.verdict} (gauge ${expectWarn ? 0 : 1}${expectWarn ? ', one warning naming it' : ''})`,
      honoured === (expectWarn ? 0 : 1) &&
        (expectWarn ? warned.length === 1 && warned[0].includes(`"verdict":"${c.verdict}"`) : warned.length === 0),
      `gauge ${honoured}, warnings ${warned.join(' | ').slice(0, 300)}`,
    );
    const plan = await run(MONITOR_BIN, ['plan', '--json', ...monitorArgs(kea, out, [], 'plan')], { env, allowFail: true });
    const planned = plan.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Obj)
      .find((o) => o.subnet_id === 1 && typeof o.verdict === 'string');
    check(
      `${tag}: plan --json shows subnet 1 ${c.verdict}`,
      plan.code === 0 && planned?.verdict === c.verdict,
      `exit ${plan.code}: ${plan.stdout.slice(0, 300)} ${plan.stderr.slice(0, 200)}`,
    );

    const first = await udhcpcOnce(net, dir);
    if (c.verdict === 'honoured') {
      const reserved = await waitFor('the udhcpc client reserved', () => reservedIp(pg), 15000, 100).catch(() => undefined);
      const del = await kea.command('lease4-del', { 'ip-address': first });
      const again = await udhcpcOnce(net, dir);
      if (c.outOfPool) {
        await mon.waitLog(/would ignore the address reserved for this device/, 5000).catch(() => 0);
        const w = mon.lines.filter((l) => /would ignore the address reserved for this device/.test(l));
        check(
          `${tag}: one warning that Kea ignores the in-pool reserved address`,
          w.length === 1 && w[0].includes('in-pool-out-of-pool'),
          w.join(' | ').slice(0, 300),
        );
        const plan2 = await run(MONITOR_BIN, ['plan', '--json', ...monitorArgs(kea, out, [], 'plan')], { env, allowFail: true });
        const warning = plan2.stdout
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Obj)
          .find((o) => o.kea_warning !== undefined);
        check(
          `${tag}: plan --json warns about the device's in-pool reserved address`,
          warning?.kea_warning === 'in-pool-out-of-pool' && warning.mac === UDHCPC_MAC,
          plan2.stdout.slice(0, 400),
        );
        check(
          `${tag}: and Kea indeed does not hand the in-pool reserved address back (lease deleted, next DORA)`,
          reserved === first && del.result === 0 && again !== first,
          `leased ${first}, reserved ${reserved}, then got ${again}`,
        );
      } else {
        check(
          `${tag}: the client gets its reserved address on its next DORA (lease deleted in between)`,
          reserved === first && del.result === 0 && again === first,
          `leased ${first}, reserved ${reserved}, lease deleted ${del.result === 0}, then got ${again}`,
        );
      }
    } else {
      const series = 'kea_lease_monitor_leases_not_selected_total{reason="kea-not-honoured",subnet_id="1"}';
      const refused = await waitFor('the lease refused', async () => ((await metric(port, series)) ?? 0) >= 1 && true, 15000, 100).catch(
        () => false,
      );
      const reserved = await reservedIp(pg);
      check(
        `${tag}: the monitor refuses to reserve (counted as kea-not-honoured, no hosts row)`,
        refused && reserved === undefined,
        `refused ${refused}, reserved ${reserved}`,
      );
      // The verdict is Kea's: an operator's reservation for the same MAC, outside the pool, is not handed out either.
      await query(
        pg,
        "INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address) VALUES (decode($1, 'hex'), 0, 1, ($2::inet - '0.0.0.0'::inet))",
        [macHex, OPERATOR_IP],
      );
      const del = await kea.command('lease4-del', { 'ip-address': first });
      const again = await udhcpcOnce(net, dir);
      check(
        `${tag}: Kea indeed ignores a reservation there (an operator's reservation of ${OPERATOR_IP} is not handed out)`,
        del.result === 0 && again !== OPERATOR_IP,
        `leased ${first}, then got ${again}`,
      );
    }
  } finally {
    await mon.stop();
    await kea.stop();
  }
}

/** Control check: the same operator reservation IS handed out when the verdict is honoured, so the check above can fail. */
async function operatorReservationControl(release: KeaRelease, net: Net, pg: Pg): Promise<void> {
  await query(pg, 'DELETE FROM hosts');
  const dir = tempDir('lmk-e2e-kcfg-');
  const kea = await startKea({ release, dir, net, pg, backend: 'memfile' });
  try {
    await query(
      pg,
      "INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address) VALUES (decode($1, 'hex'), 0, 1, ($2::inet - '0.0.0.0'::inet))",
      [macHex, OPERATOR_IP],
    );
    const got = await udhcpcOnce(net, dir);
    check(
      `kea-config ${release}: with the defaults, the operator's reservation of ${OPERATOR_IP} is handed out (control)`,
      got === OPERATOR_IP,
      `got ${got}`,
    );
  } finally {
    await kea.stop();
  }
}

/**
 * The timer and an unreachable socket, through the binary: Kea stopped (the monitor warns, keeps the last
 * configuration, keeps running), then back with reservations off (the next read refuses); and a socket
 * that is not there at start refuses nothing.
 */
async function keaAwayAndBack(release: KeaRelease, net: Net, pg: Pg): Promise<void> {
  const tag = `kea-config ${release}`;
  await query(pg, 'DELETE FROM hosts');
  const dir = tempDir('lmk-e2e-kcfg-');
  let kea = await startKea({ release, dir, net, pg, backend: 'memfile' });
  const out = join(dir, 'discovery');
  const port = await freePort();
  const env = { ...process.env, ...pgEnv(pg), NODE_OPTIONS: '' };
  const gauge = () => metric(port, 'kea_lease_monitor_subnet_reservations_honoured{subnet_id="1"}');
  const mon = startProcess(
    MONITOR_BIN,
    ['run', ...monitorArgs(kea, out, ['--log-format', 'json', '--metrics-port', String(port), '--kea-config-interval', '1'])],
    env,
  );
  try {
    await mon.waitLog(WATCHING, 15000);
    const before = await gauge();
    await kea.stop();
    const kept = await mon.waitLog(/Cannot read kea-dhcp4's configuration; keeping the last one read/, 5000).then(
      () => true,
      () => false,
    );
    check(
      `${tag}: Kea stopped: the monitor warns, keeps the last configuration (gauge still 1) and keeps running`,
      before === 1 && kept && (await gauge()) === 1 && mon.proc.exitCode === null,
      `gauge before ${before}, warned ${kept}, exit ${mon.proc.exitCode}`,
    );
    kea = await startKea({ release, dir, net, pg, backend: 'memfile', configure: (d) => (subnet1(d)['reservations-in-subnet'] = false) });
    const warned = await mon.waitLog(/would not honour reservations in this subnet/, 5000).then(
      () => true,
      () => false,
    );
    await udhcpcOnce(net, dir);
    const series = 'kea_lease_monitor_leases_not_selected_total{reason="kea-not-honoured",subnet_id="1"}';
    const refused = await waitFor('the lease refused', async () => ((await metric(port, series)) ?? 0) >= 1 && true, 15000, 100).catch(
      () => false,
    );
    check(
      `${tag}: Kea back with reservations-in-subnet false: the next timed read warns and the lease is refused`,
      warned && (await gauge()) === 0 && refused && (await reservedIp(pg)) === undefined,
      `warned ${warned}, gauge ${await gauge()}, refused ${refused}`,
    );
  } finally {
    await mon.stop();
    await kea.stop();
  }

  // No socket at all at start: a warning, and reservations go ahead.
  await query(pg, 'DELETE FROM hosts');
  const dir2 = tempDir('lmk-e2e-kcfg-');
  const kea2 = await startKea({ release, dir: dir2, net, pg, backend: 'memfile' });
  const missing = join(dir2, 'no-such-socket');
  const args = [
    '--lease-file',
    kea2.leaseFile,
    '--output-dir',
    join(dir2, 'discovery'),
    '--kea-control-socket',
    missing,
    '--subnet-id',
    '1',
  ];
  const mon2 = startProcess(MONITOR_BIN, ['run', ...args, '--log-format', 'json'], env);
  try {
    await mon2.waitLog(WATCHING, 15000);
    const warned = mon2.lines.some((l) => /until it is read, no reservation is refused/.test(l));
    await udhcpcOnce(net, dir2);
    const reserved = await waitFor('the udhcpc client reserved', () => reservedIp(pg), 15000, 100).catch(() => undefined);
    check(
      `${tag}: no control socket at start: one warning, and the lease is reserved all the same`,
      warned && reserved !== undefined,
      `warned ${warned}, reserved ${reserved}`,
    );
    const plan = await run(MONITOR_BIN, ['plan', '--json', ...args], { env, allowFail: true });
    const first = plan.stdout.split('\n').find((l) => l.startsWith('{'));
    check(
      `${tag}: plan with an unreachable socket says so and refuses nothing (exit 0)`,
      plan.code === 0 &&
        first !== undefined &&
        (JSON.parse(first) as Obj).kea_config === 'unreadable' &&
        !plan.stdout.includes('kea-not-honoured'),
      `exit ${plan.code}: ${plan.stdout.slice(0, 200)} ${plan.stderr.slice(0, 200)}`,
    );
  } finally {
    await mon2.stop();
    await kea2.stop();
  }
}

export async function keaConfigSection(net: Net, release: KeaRelease): Promise<void> {
  const dir = tempDir('lmk-e2e-kcfg-pg-');
  const pg = await startPg(join(dir, 'pg'), { schemaFile: (await keaRelease(release)).schemaFile });
  await migrate(pg, false);
  await operatorReservationControl(release, net, pg);
  for (const c of cases(release)) await oneCase(c, release, net, pg);
  await keaAwayAndBack(release, net, pg);
}
