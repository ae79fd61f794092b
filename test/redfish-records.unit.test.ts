// The probe's result in the discovery record: written through the record queue, kept by later
// rewrites, checked again when read back; and the --require-redfish gate that holds leases back.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { DiscoveryWriter, RecordedResult } from '../src/discovery';
import { Lease, parseHwaddr, parseIPv4 } from '../src/lease';
import { Metrics } from '../src/metrics';
import { LeaseQueue } from '../src/pipeline/queue';
import { RecordWriter } from '../src/pipeline/records';
import { RedfishGate } from '../src/pipeline/redfish-gate';
import { RedfishProber } from '../src/redfish/prober';
import type { RedfishInfo } from '../src/redfish/service-root';
import { memoryLogger, tempDir } from './helpers/monitor';
import { Device, selfSigned, sendJson, SERVICE_ROOT, startDevice } from './helpers/tls-device';

const MAC = '0c:c4:7a:00:00:01';
const turn = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

function lease(ip = '127.0.0.1', mac = MAC): Lease {
  return { address: parseIPv4(ip), hwaddr: parseHwaddr(mac), subnetId: 1, hostname: null, source: 'memfile' };
}
const result = (l = lease()): RecordedResult => ({ lease: l, outcome: 'created', hostId: 7 });
const info = (over: Partial<RedfishInfo> = {}): RedfishInfo => ({
  status: 'present',
  version: '1.15.0',
  uuid: SERVICE_ROOT.UUID,
  vendor: 'Contoso',
  product: null,
  probed_at: '2026-01-01T00:00:00.000Z',
  ...over,
});

function records(): { w: RecordWriter; discovery: DiscoveryWriter; read: () => Record<string, unknown> } {
  const dir = tempDir('klm-rf-');
  const discovery = new DiscoveryWriter(dir);
  discovery.prepare();
  const w = new RecordWriter(discovery, 1000, 100, memoryLogger().logger, new Metrics());
  return { w, discovery, read: () => JSON.parse(readFileSync(discovery.pathFor(parseHwaddr(MAC)), 'utf8')) as Record<string, unknown> };
}

describe('Redfish in discovery records', () => {
  test('a probe result patches the record on disk; later rewrites keep it', async () => {
    const { w, read } = records();
    w.submit(result(), []);
    await turn();
    assert.equal(read().redfish, undefined);
    w.submitRedfish(parseHwaddr(MAC), info());
    await turn();
    assert.deepEqual(read().redfish, info());
    assert.equal(read().host_id, 7);
    w.submit({ ...result(), outcome: 'unchanged' }, []);
    await turn();
    assert.equal(read().reservation, 'unchanged');
    assert.deepEqual(read().redfish, info(), 'a rewrite keeps the probe result');
  });

  test('no record yet: a probe result alone writes nothing; queued behind a record, both land in one write', async () => {
    const { w, discovery, read } = records();
    w.submitRedfish(parseHwaddr(MAC), info());
    await turn();
    assert.equal(discovery.recordStems().size, 0);
    w.submit(result(), []);
    w.submitRedfish(parseHwaddr(MAC), info({ vendor: 'Second' }));
    await turn();
    assert.equal((read().redfish as RedfishInfo).vendor, 'Second');
  });

  test('a tampered redfish field on disk is checked again at the next rewrite', async () => {
    const { w, discovery, read } = records();
    w.submit(result(), [], info());
    await turn();
    const path = discovery.pathFor(parseHwaddr(MAC));
    const doc = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...doc, redfish: { ...info(), vendor: 'x\u0000\u001by'.repeat(100), uuid: '../../etc' } }));
    w.submit(result(), []);
    await turn();
    const r = read().redfish as RedfishInfo;
    assert.equal(r.uuid, null);
    assert.ok(!/[\u0000-\u001f]/.test(r.vendor ?? '') && Buffer.byteLength(r.vendor ?? '') <= 128);
  });
});

describe('--require-redfish gate', () => {
  const cert = selfSigned('127.0.0.1');
  const devices: Device[] = [];
  after(() => Promise.all(devices.map((d) => d.close())));

  async function setup(answer: 'root' | 'html') {
    const d = await startDevice(cert, (_req, res) =>
      answer === 'root' ? sendJson(res, SERVICE_ROOT) : res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>'),
    );
    devices.push(d);
    const { logger } = memoryLogger();
    const prober = new RedfishProber(
      { timeoutMs: 1000, maxBytes: 65536, ca: null, port: d.port, retryForMs: 60_000, concurrency: 2, attemptsPerSecond: 1000 },
      null,
      logger,
      new Metrics(),
    );
    const queue = new LeaseQueue(10);
    const dir = tempDir('klm-gate-');
    const discovery = new DiscoveryWriter(dir);
    discovery.prepare();
    const done = new Promise<void>((resolve) => prober.subscribe(() => setImmediate(resolve)));
    return { d, prober, queue, discovery, gate: new RedfishGate(prober, queue, discovery, logger), done };
  }

  test('held while the probe runs, handed back to the queue once the device answers as Redfish', async () => {
    const { gate, queue, done, d } = await setup('root');
    assert.equal(gate.admit(lease()), 'pending-probe');
    assert.equal(gate.admit(lease()), 'pending-probe', 'a renewal meanwhile: still held, no second probe');
    assert.equal(queue.size, 0);
    await done;
    assert.equal(queue.size, 1, 'the held lease is back in the queue');
    const [back] = queue.take(1);
    assert.equal(gate.admit(back.lease), 'reserve');
    assert.equal(d.requests.length, 1);
  });

  test('not Redfish: dropped for the retry window; a new address is probed again', async () => {
    const { gate, queue, done, prober } = await setup('html');
    assert.equal(gate.admit(lease()), 'pending-probe');
    await done;
    assert.equal(queue.size, 0);
    assert.equal(gate.admit(lease()), 'not-redfish');
    assert.equal(gate.admit(lease('127.0.0.2')), 'pending-probe');
    await prober.stop();
  });

  test('a device whose record says present (reserved before a restart) passes without a probe', async () => {
    const { gate, discovery, d } = await setup('root');
    discovery.write(result(), new Date(), info());
    assert.equal(gate.admit(lease()), 'reserve');
    assert.equal(d.requests.length, 0);
  });
});
