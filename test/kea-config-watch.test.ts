// The config watch against a fake kea-dhcp4 control socket speaking Kea's JSON (one command per
// connection, answer, close), so that an unreachable, failing and changing Kea can be staged.
import assert from 'node:assert/strict';
import { createServer, Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { KeaConfigWatch } from '../src/kea/config-watch';
import { parseHwaddr, parseIPv4 } from '../src/lease';
import { M, Metrics } from '../src/metrics';
import { memoryLogger, tempDir } from './helpers/monitor';
import { waitFor } from './helpers/wait';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Obj = Record<string, unknown>;

class FakeKea {
  server: Server | null = null;
  answer: Obj = {};
  commands: string[] = [];
  constructor(readonly path: string) {}

  async listen(): Promise<void> {
    const server = createServer((c) => {
      let buf = '';
      c.on('data', (d: Buffer) => {
        buf += d.toString();
        let cmd: { command: string };
        try {
          cmd = JSON.parse(buf) as { command: string };
        } catch {
          return;
        }
        this.commands.push(cmd.command);
        c.end(JSON.stringify(cmd.command === 'config-get' ? this.answer : { result: 2, text: `'${cmd.command}' command not supported.` }));
      });
    });
    this.server = server;
    await new Promise<void>((r) => server.listen(this.path, r));
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

function config(subnets: Obj[]): Obj {
  return {
    result: 0,
    arguments: {
      Dhcp4: {
        'hosts-databases': [{ type: 'postgresql' }],
        'host-reservation-identifiers': ['hw-address', 'duid', 'circuit-id', 'client-id'],
        'reservations-global': false,
        'reservations-in-subnet': true,
        'reservations-out-of-pool': false,
        subnet4: subnets,
      },
      hash: 'x',
    },
  };
}

const lease = (subnetId: number, ip: string, mac = '02:00:00:00:00:01') => ({ hwaddr: parseHwaddr(mac), address: parseIPv4(ip), subnetId });
const messages = (logs: string[], level: string) =>
  logs.map((l) => JSON.parse(l) as { level: string; message: string; subnet_id?: number }).filter((l) => l.level === level);

describe('kea config watch: reads config-get, refuses what Kea would not honour, survives Kea being away', () => {
  const watches: KeaConfigWatch[] = [];
  const fakes: FakeKea[] = [];
  after(async () => {
    for (const w of watches) await w.stop();
    for (const f of fakes) await f.close();
  });

  function setup() {
    const kea = new FakeKea(join(tempDir('klm-kea-'), 'kea4-ctrl.sock'));
    fakes.push(kea);
    const { logger, logs } = memoryLogger('debug');
    const metrics = new Metrics([1, 2]); // configured subnets get their own subnet_id label
    const watch = new KeaConfigWatch({ socketPath: kea.path, timeoutMs: 500, intervalMs: 3_600_000, writer: 'sql' }, logger, metrics);
    watches.push(watch);
    return { kea, logs, metrics, watch };
  }

  test('no socket at start: one warning, nothing refused, no crash; then the first read takes effect', async () => {
    const { kea, logs, metrics, watch } = setup();
    await watch.start();
    assert.equal(watch.current, null);
    assert.deepEqual(watch.admit(lease(2, '10.0.2.5')), { selected: true });
    await watch.read();
    const warns = messages(logs, 'warn');
    assert.equal(warns.length, 1, JSON.stringify(warns));
    assert.match(warns[0].message, /until it is read, no reservation is refused/);
    assert.equal(metrics.value(M.keaConfigErrors[0]), 2);

    kea.answer = config([
      { id: 1, subnet: '10.0.1.0/24', pools: [{ pool: '10.0.1.100-10.0.1.199' }] },
      { id: 2, subnet: '10.0.2.0/24', 'reservations-in-subnet': false },
    ]);
    await kea.listen();
    await watch.read();
    assert.deepEqual(kea.commands, ['config-get']);
    assert.deepEqual(watch.admit(lease(1, '10.0.1.150')), { selected: true });
    assert.deepEqual(watch.admit(lease(2, '10.0.2.5')), { selected: false, reason: 'kea-not-honoured' });
    assert.deepEqual(watch.admit(lease(3, '10.0.3.5')), { selected: true }, 'a subnet Kea does not know is not refused');
    assert.equal(metrics.value(M.keaRefused[0], { subnet_id: 2, verdict: 'reservations-disabled' }), 1);
    assert.equal(metrics.value(M.keaSubnetHonoured[0], { subnet_id: 1 }), 1);
    assert.equal(metrics.value(M.keaSubnetHonoured[0], { subnet_id: 2 }), 0);
    assert.ok(metrics.value(M.keaConfigRead[0]) > 0);
    assert.ok(messages(logs, 'info').some((l) => /Read kea-dhcp4's configuration again/.test(l.message)));

    // Read again, same configuration: still exactly one warning for subnet 2.
    await watch.read();
    const subnetWarns = messages(logs, 'warn').filter((l) => l.subnet_id === 2);
    assert.equal(subnetWarns.length, 1);
    assert.match(subnetWarns[0].message, /would not honour reservations in this subnet/);

    // Kea goes away: the last configuration read still applies.
    await kea.close();
    await watch.read();
    assert.ok(messages(logs, 'warn').some((l) => /keeping the last one read/.test(l.message)));
    assert.deepEqual(watch.admit(lease(2, '10.0.2.6')), { selected: false, reason: 'kea-not-honoured' });

    // Kea back with subnet 2 fixed: honoured again, said once at info.
    kea.answer = config([
      { id: 1, subnet: '10.0.1.0/24' },
      { id: 2, subnet: '10.0.2.0/24' },
    ]);
    await kea.listen();
    await watch.read();
    assert.deepEqual(watch.admit(lease(2, '10.0.2.6')), { selected: true });
    assert.ok(messages(logs, 'info').some((l) => l.subnet_id === 2 && /honours reservations/.test(l.message)));
    assert.equal(metrics.value(M.keaSubnetHonoured[0], { subnet_id: 2 }), 1);
  });

  test('a lease in a subnet the last configuration lacks triggers an early re-read, at most every 30 s', async (t) => {
    const { kea, watch } = setup();
    kea.answer = config([{ id: 1, subnet: '10.0.1.0/24' }]);
    await kea.listen();
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    await watch.start();
    kea.answer = config([
      { id: 1, subnet: '10.0.1.0/24' },
      { id: 3, subnet: '10.0.3.0/24', 'reservations-in-subnet': false },
    ]);
    t.mock.timers.tick(29_000);
    assert.deepEqual(watch.admit(lease(3, '10.0.3.5')), { selected: true }, 'unknown: not refused');
    await sleep(200);
    assert.equal(kea.commands.length, 1, 'no re-read within 30 s of the last one');
    t.mock.timers.tick(2_000);
    assert.deepEqual(watch.admit(lease(3, '10.0.3.5')), { selected: true });
    t.mock.timers.reset();
    await waitFor('the early re-read', () => watch.current?.has(3), 5000);
    assert.equal(kea.commands.length, 2);
    assert.deepEqual(watch.admit(lease(3, '10.0.3.6')), { selected: false, reason: 'kea-not-honoured' });
  });

  test('an error answer or an unreadable configuration keeps the last one; addresses Kea ignores are warned once per device', async () => {
    const { kea, logs, metrics, watch } = setup();
    kea.answer = config([{ id: 1, subnet: '10.0.1.0/24', 'reservations-out-of-pool': true, pools: [{ pool: '10.0.1.100 - 10.0.1.199' }] }]);
    await kea.listen();
    await watch.start();
    assert.ok(messages(logs, 'warn').some((l) => l.subnet_id === 1 && /only out-of-pool reservations/.test(l.message)));
    for (let i = 0; i < 3; i++) assert.deepEqual(watch.admit(lease(1, '10.0.1.150')), { selected: true });
    watch.admit(lease(1, '10.0.1.20'));
    watch.admit(lease(1, '10.0.1.151'));
    watch.admit(lease(1, '10.0.1.160', '02:00:00:00:00:02'));
    const ignored = messages(logs, 'warn').filter((l) => /would ignore the address/.test(l.message));
    assert.equal(ignored.length, 2, 'once per device, and not for the out-of-pool address');
    assert.equal(metrics.value(M.keaAddressWarnings[0], { problem: 'in-pool-out-of-pool' }), 2);

    kea.answer = { result: 1, text: 'boom' };
    await watch.read();
    kea.answer = config([{ id: 1, subnet: 'nonsense' }]);
    await watch.read();
    assert.equal(metrics.value(M.keaConfigErrors[0]), 2);
    assert.equal(watch.current?.get(1)?.verdict, 'honoured');
    const w = messages(logs, 'warn').filter((l) => /Cannot read/.test(l.message));
    assert.equal(w.length, 1, 'one warning per outage');
  });
});
