// End-to-end for --redfish-probe and --require-redfish: real kea-dhcp4 (PostgreSQL leases, NOTIFY),
// real DHCP clients (udhcpc on macvlans, one MAC per device) in the client namespace, the built
// monitor in the server namespace, and at the leased addresses DMTF's Redfish-Mockup-Server (a real
// Redfish implementation this project did not write, with TLS) or deliberately broken servers.
// The mockup server is not part of this repository: see docs/redfish.md ("Testing").
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { check } from '../lib/checks';
import { udhcpcOnce } from '../lib/dhcp';
import { startKea } from '../lib/kea';
import { KeaRelease, keaRelease } from '../lib/kea-release';
import { migrate, Monitor, MONITOR_BIN, startProcess } from '../lib/monitor';
import { Net } from '../lib/netns';
import { pgEnv, Pg, query, startPg } from '../lib/pg';
import { run, sleep, tempDir, waitFor } from '../lib/proc';
import { selfSignedArgs } from '../../lib/self-signed';

export const MOCKUP_DIR = process.env.KLM_REDFISH_MOCKUP_SERVER ?? '/var/cache/kea-lease-monitor/redfish-mockup-server';
const HOW_TO =
  'get it with: git clone https://github.com/DMTF/Redfish-Mockup-Server DIR && mkdir DIR/pydeps && ' +
  'curl -o DIR/pydeps/grequests.py https://raw.githubusercontent.com/spyoungtech/grequests/master/grequests.py; ' +
  'apt-get install python3-requests python3-gevent; DIR is $KLM_REDFISH_MOCKUP_SERVER or /var/cache/kea-lease-monitor/redfish-mockup-server';
const LISTENING = /Listening for database lease events/;
const RETRY_FOR = '20s';
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

type Kind = 'mockup' | 'absent' | 'slow' | 'html' | 'oversized' | 'invalid-json' | 'hostile' | 'unreachable';
interface Dev {
  n: number;
  kind: Kind;
  mac: string;
  ip: string;
  server: Monitor | null;
}

const macOf = (n: number): string => `02:99:00:00:01:${n.toString(16).padStart(2, '0')}`;
const stem = (mac: string): string => mac.replace(/:/g, '-');

/** A macvlan with its own MAC in the client namespace, leased by udhcpc; the address then goes on the veth (as a /32). */
async function leaseDevice(net: Net, dir: string, n: number, kind: Kind): Promise<Dev> {
  const ifc = `rf${n}`;
  const mac = macOf(n);
  await run('ip', ['-n', net.cli, 'link', 'add', ifc, 'link', net.cliIf, 'type', 'macvlan', 'mode', 'bridge']);
  await run('ip', ['-n', net.cli, 'link', 'set', ifc, 'address', mac]);
  await run('ip', ['-n', net.cli, 'link', 'set', ifc, 'up']);
  const ip = await udhcpcOnce({ ...net, cliIf: ifc }, dir, `bmc-${n}`);
  await run('ip', ['-n', net.cli, 'link', 'del', ifc]);
  // An unreachable device: leased, then gone (its address answers nobody's ARP).
  if (kind !== 'unreachable') await run('ip', ['-n', net.cli, 'addr', 'add', `${ip}/32`, 'dev', net.cliIf]);
  return { n, kind, mac, ip, server: null };
}

function mockupServer(net: Net, ip: string, mockup: string, certDir: string): Monitor {
  return startProcess(
    'ip',
    [
      'netns',
      'exec',
      net.cli,
      '/usr/bin/python3',
      join(MOCKUP_DIR, 'redfishMockupServer.py'),
      '-H',
      ip,
      '-p',
      '443',
      '-D',
      mockup,
      '-S',
      '-s',
      '--cert',
      join(certDir, 'cert.pem'),
      '--key',
      join(certDir, 'key.pem'),
    ],
    { ...process.env, PYTHONPATH: join(MOCKUP_DIR, 'pydeps') },
  );
}

function brokenServer(net: Net, ip: string, mode: string, certDir: string): Monitor {
  return startProcess(
    'ip',
    [
      'netns',
      'exec',
      net.cli,
      process.execPath,
      '--import',
      'tsx',
      join(__dirname, 'broken-device.ts'),
      mode,
      ip,
      join(certDir, 'cert.pem'),
      join(certDir, 'key.pem'),
    ],
    { ...process.env, NODE_OPTIONS: '' },
  );
}

/** A copy of the DMTF mockup whose ServiceRoot carries a hostile Vendor and Product. */
function hostileMockup(dir: string): string {
  const copy = join(dir, 'hostile-mockup');
  cpSync(join(MOCKUP_DIR, 'public-rackmount1'), copy, { recursive: true });
  const rootFile = join(copy, 'index.json');
  const root = JSON.parse(readFileSync(rootFile, 'utf8')) as Record<string, unknown>;
  root.Vendor = '\u001b[2J\u0000Evil\r\nCorp\u2028' + 'é'.repeat(400);
  root.Product = '<script>alert(1)</script>\u0007'.repeat(50);
  root.UUID = '../../../etc/passwd';
  writeFileSync(rootFile, JSON.stringify(root));
  return copy;
}

function startRedfishMonitor(net: Net, pg: Pg, outDir: string, extra: string[]): Monitor {
  const args = [
    'run',
    '--use-database-events',
    '--subnet-id',
    '1',
    '--output-dir',
    outDir,
    '--log-format',
    'json',
    '--log-level',
    'debug',
    '--metrics-port',
    '9464',
    '--redfish-probe',
    '--redfish-retry-for',
    RETRY_FOR,
    '--redfish-timeout',
    '2',
    ...extra,
  ];
  return startProcess('ip', ['netns', 'exec', net.srv, MONITOR_BIN, ...args], { ...process.env, ...pgEnv(pg), NODE_OPTIONS: '' });
}

function record(outDir: string, d: Dev): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(join(outDir, `${stem(d.mac)}.json`), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}
const redfishOf = (outDir: string, d: Dev) => (record(outDir, d)?.redfish ?? null) as Record<string, string | null> | null;

async function hostRow(pg: Pg, d: Dev): Promise<boolean> {
  const rows = await query(pg, "SELECT 1 FROM hosts WHERE dhcp_identifier = decode($1, 'hex')", [d.mac.replace(/:/g, '')]);
  return rows.length > 0;
}

async function metrics(net: Net): Promise<string> {
  return (await run('ip', ['netns', 'exec', net.srv, 'curl', '-s', 'http://127.0.0.1:9464/metrics'], { allowFail: true })).stdout;
}

async function plan(pg: Pg, outDir: string): Promise<Map<string, string>> {
  const r = await run(
    MONITOR_BIN,
    ['plan', '--json', '--use-database-events', '--subnet-id', '1', '--output-dir', outDir, '--redfish-probe', '--require-redfish'],
    { env: { ...process.env, ...pgEnv(pg), NODE_OPTIONS: '' }, allowFail: true },
  );
  const m = new Map<string, string>();
  for (const l of r.stdout.trim().split('\n')) {
    const o = JSON.parse(l) as { mac?: string; action?: string };
    if (o.mac && o.action) m.set(o.mac, o.action);
  }
  return m;
}

/** A NOTIFY anyone with CONNECT could send: a lease lease4 does not hold, at an address where something listens. */
async function forgeNotify(pg: Pg, ip: string, mac: string): Promise<void> {
  const [a, b, c, d] = ip.split('.').map(Number);
  const payload = {
    v: 1,
    op: 'insert',
    address: ((a << 24) >>> 0) + (b << 16) + (c << 8) + d,
    hwaddr: mac.replace(/:/g, ''),
    subnet_id: 1,
    state: 0,
    valid_lifetime: 3600,
    expire: Math.floor(Date.now() / 1000) + 3600,
    hostname: 'forged',
  };
  await query(pg, "SELECT pg_notify('kea_lease_events', $1)", [JSON.stringify(payload)]);
}

/** Why the section cannot run here (DMTF's server or its Python modules missing), or null. */
export function redfishMockupMissing(): string | null {
  if (!existsSync(join(MOCKUP_DIR, 'redfishMockupServer.py')) || !existsSync(join(MOCKUP_DIR, 'pydeps', 'grequests.py')))
    return `DMTF Redfish-Mockup-Server is not in ${MOCKUP_DIR}; ${HOW_TO}`;
  const py = spawnSync('/usr/bin/python3', ['-c', 'import requests, gevent'], { stdio: 'ignore' });
  return py.status === 0 ? null : 'python3-requests and python3-gevent are not installed (scripts/install-deps.sh)';
}

export async function redfishSection(net: Net, release: KeaRelease): Promise<void> {
  const missing = redfishMockupMissing();
  if (missing) {
    check(`redfish: DMTF Redfish-Mockup-Server available in ${MOCKUP_DIR}`, false, missing);
    return;
  }
  const dir = tempDir('lmk-e2e-rf-');
  const certDir = join(dir, 'tls');
  await run('mkdir', ['-p', certDir]);
  await run('openssl', selfSignedArgs({ cn: 'bmc', keyFile: join(certDir, 'key.pem'), certFile: join(certDir, 'cert.pem') }));
  const pg = await startPg(join(dir, 'pg'), { schemaFile: (await keaRelease(release)).schemaFile });
  await migrate(pg, true);
  const kea = await startKea({ release, dir, net, pg, backend: 'postgresql' });
  const kinds: Kind[] = ['mockup', 'absent', 'slow', 'html', 'oversized', 'invalid-json', 'hostile', 'unreachable'];
  const devs: Dev[] = [];
  for (const [i, kind] of kinds.entries()) devs.push(await leaseDevice(net, dir, i + 1, kind));
  const by = (k: Kind): Dev => devs.find((d) => d.kind === k) as Dev;
  const hostile = hostileMockup(dir);
  const startServer = (d: Dev): void => {
    if (d.kind === 'mockup' || d.kind === 'slow') d.server = mockupServer(net, d.ip, join(MOCKUP_DIR, 'public-rackmount1'), certDir);
    else if (d.kind === 'hostile') d.server = mockupServer(net, d.ip, hostile, certDir);
    else if (d.kind === 'html' || d.kind === 'oversized' || d.kind === 'invalid-json') d.server = brokenServer(net, d.ip, d.kind, certDir);
  };
  for (const d of devs) if (d.kind !== 'slow') startServer(d);
  // The decoy: something listens at an address no lease holds; only forged NOTIFYs name it.
  const decoyIp = '10.99.0.200';
  await run('ip', ['-n', net.cli, 'addr', 'add', `${decoyIp}/32`, 'dev', net.cliIf]);
  const decoy = brokenServer(net, decoyIp, 'root-logging', certDir);
  await decoy.waitLog(/LISTENING/, 20000);
  for (const d of devs)
    if (d.server)
      await d.server
        .waitLog(d.kind === 'mockup' || d.kind === 'hostile' ? /Serving Mockup|Serving/ : /LISTENING/, 20000)
        .catch(() => undefined);
  process.stdout.write(`     ${devs.length} devices leased: ${devs.map((d) => `${d.kind} ${d.ip}`).join(', ')}\n`);

  // 1. --redfish-probe: after the reservation, in the background.
  const outDir = join(dir, 'discovery');
  let mon = startRedfishMonitor(net, pg, outDir, []);
  await mon.waitLog(LISTENING, 15000);
  await forgeNotify(pg, decoyIp, '02:99:00:00:01:ff');
  await sleep(6000);
  check(
    'redfish: slow start: no answer yet while its server is down',
    redfishOf(outDir, by('slow')) === null,
    JSON.stringify(redfishOf(outDir, by('slow'))),
  );
  startServer(by('slow'));
  await waitFor('every device probed to the end', () => devs.every((d) => redfishOf(outDir, d) !== null), 60000, 500).catch(
    () => undefined,
  );
  const got = (k: Kind) => redfishOf(outDir, by(k));
  const present = got('mockup');
  check(
    'redfish: DMTF mockup over TLS (self-signed): present, with its RedfishVersion and UUID',
    present?.status === 'present' && present.version === '1.15.0' && present.uuid === '92384634-2938-2342-8820-489239905423',
    JSON.stringify(present),
  );
  check(
    "redfish: the mockup's ServiceRoot has no Vendor or Product: null in the record",
    present?.vendor === null && present?.product === null,
  );
  check('redfish: port closed: absent after the retry window', got('absent')?.status === 'absent', JSON.stringify(got('absent')));
  check(
    'redfish: slow start: the server came up later and the retries found it: present',
    got('slow')?.status === 'present',
    JSON.stringify(got('slow')),
  );
  for (const k of ['html', 'oversized', 'invalid-json'] as const) {
    check(`redfish: garbage (${k}): absent`, got(k)?.status === 'absent' && got(k)?.vendor === null, JSON.stringify(got(k)));
  }
  check(
    'redfish: leased, then gone: unreachable after the retry window',
    got('unreachable')?.status === 'unreachable',
    JSON.stringify(got('unreachable')),
  );
  const h = got('hostile');
  check(
    'redfish: hostile Vendor/Product in the mockup: present, control characters stripped, at most 128 bytes each; a bad UUID dropped',
    h?.status === 'present' &&
      typeof h.vendor === 'string' &&
      !CONTROL.test(h.vendor) &&
      Buffer.byteLength(h.vendor) <= 128 &&
      h.vendor.startsWith('[2JEvilCorp') &&
      typeof h.product === 'string' &&
      !CONTROL.test(h.product) &&
      Buffer.byteLength(h.product) <= 128 &&
      h.uuid === null,
    JSON.stringify(h).slice(0, 300),
  );
  const rec = record(outDir, by('mockup'));
  check(
    'redfish: the record keeps its reservation fields beside redfish',
    rec?.reservation !== undefined && rec?.ip === by('mockup').ip,
    JSON.stringify(rec).slice(0, 200),
  );
  check(
    'redfish: a forged NOTIFY made the monitor connect nowhere (--redfish-probe)',
    decoy.count(/CONNECTION/) === 0,
    `${decoy.count(/CONNECTION/)} connections`,
  );
  const text = await metrics(net);
  check(
    'redfish: kea_lease_monitor_redfish_probes_total counts by result',
    /redfish_probes_total\{result="present"\} 3/.test(text) &&
      /redfish_probes_total\{result="absent"\} 4/.test(text) &&
      /redfish_probes_total\{result="unreachable"\} 1/.test(text),
    text
      .split('\n')
      .filter((l) => l.includes('redfish_probes_total{'))
      .join(' '),
  );
  check('redfish: the probe duration histogram has observations', /redfish_probe_duration_seconds_count [1-9]/.test(text));
  check('redfish: monitor exits 0 on SIGTERM with probes done', (await mon.stop()) === 0);

  // 2. --require-redfish: reservations only for devices that answer; plan shows pending-probe.
  by('slow').server?.proc.kill('SIGTERM');
  await sleep(500);
  await query(pg, 'DELETE FROM hosts');
  rmSync(outDir, { recursive: true, force: true });
  const before = await plan(pg, outDir);
  check(
    'redfish: plan --require-redfish: every selected lease pending-probe before any probe',
    devs.every((d) => before.get(d.mac) === 'pending-probe'),
    JSON.stringify([...before]),
  );
  mon = startRedfishMonitor(net, pg, outDir, ['--require-redfish']);
  await mon.waitLog(LISTENING, 15000);
  await forgeNotify(pg, decoyIp, '02:99:00:00:01:fe');
  await waitFor(
    'the Redfish devices reserved',
    async () => (await hostRow(pg, by('mockup'))) && (await hostRow(pg, by('hostile'))),
    30000,
    250,
  ).catch(() => undefined);
  check('redfish: --require-redfish reserves the Redfish devices', (await hostRow(pg, by('mockup'))) && (await hostRow(pg, by('hostile'))));
  check('redfish: --require-redfish: the slow one is held back while its server is down', !(await hostRow(pg, by('slow'))));
  startServer(by('slow'));
  const heldThenReserved = await waitFor('the slow device reserved', () => hostRow(pg, by('slow')), 30000, 250).catch(() => false);
  check('redfish: --require-redfish: the held lease is reserved once its server answers (held, not lost)', heldThenReserved === true);
  await sleep(25000); // past the others' retry window
  const notReserved = [];
  for (const k of ['absent', 'html', 'oversized', 'invalid-json', 'unreachable'] as const)
    if (await hostRow(pg, by(k))) notReserved.push(k);
  check('redfish: --require-redfish: no reservation for devices that are not Redfish', notReserved.length === 0, notReserved.join(','));
  check(
    'redfish: --require-redfish: the record of a reserved device carries its probe result',
    redfishOf(outDir, by('mockup'))?.status === 'present' && redfishOf(outDir, by('slow'))?.status === 'present',
  );
  check(
    'redfish: a forged NOTIFY made the monitor connect nowhere (--require-redfish: lease4 checked first)',
    decoy.count(/CONNECTION/) === 0 && mon.count(/Not probing for Redfish: lease4 holds no such live lease/) >= 1,
    `${decoy.count(/CONNECTION/)} connections`,
  );
  const after = await plan(pg, outDir);
  check(
    'redfish: plan --require-redfish afterwards: Redfish devices unchanged, the others pending-probe',
    ['mockup', 'slow', 'hostile'].every((k) => after.get(by(k as Kind).mac) === 'unchanged') &&
      ['absent', 'html', 'oversized', 'invalid-json', 'unreachable'].every((k) => after.get(by(k as Kind).mac) === 'pending-probe'),
    JSON.stringify([...after]),
  );
  check('redfish: monitor (--require-redfish) exits 0 on SIGTERM', (await mon.stop()) === 0);
  await kea.stop();
}
