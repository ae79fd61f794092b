// The Redfish prober against HTTPS servers on loopback: the status mapping (docs/redfish.md),
// retries inside the window, the size and time bounds, no credentials, certificates, concurrency.
import assert from 'node:assert/strict';
import { createServer as createTcpServer, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, describe, test } from 'node:test';
import { Lease, parseHwaddr, parseIPv4 } from '../src/lease';
import { Metrics } from '../src/metrics';
import { ProberSettings, RedfishProber } from '../src/redfish/prober';
import type { RedfishInfo } from '../src/redfish/service-root';
import { memoryLogger } from './helpers/monitor';
import { Device, selfSigned, sendJson, SERVICE_ROOT, startDevice } from './helpers/tls-device';

const cert = selfSigned('127.0.0.1');
const devices: Device[] = [];
after(() => Promise.all(devices.map((d) => d.close())));

function lease(n = 1, source: Lease['source'] = 'memfile'): Lease {
  return {
    address: parseIPv4('127.0.0.1'),
    hwaddr: parseHwaddr(`0c:c4:7a:00:00:${n.toString(16).padStart(2, '0')}`),
    subnetId: 1,
    hostname: null,
    source,
  };
}

function prober(port: number, over: Partial<ProberSettings> = {}, liveCheck: ((l: Lease) => Promise<boolean>) | null = null) {
  const metrics = new Metrics();
  const { logger, logs } = memoryLogger('debug');
  const p = new RedfishProber(
    { timeoutMs: 1000, maxBytes: 64 * 1024, ca: null, port, retryForMs: 0, concurrency: 4, attemptsPerSecond: 1000, ...over },
    liveCheck,
    logger,
    metrics,
  );
  const results: RedfishInfo[] = [];
  const waiting: Array<(i: RedfishInfo) => void> = [];
  p.subscribe((_l, info) => {
    results.push(info);
    waiting.shift()?.(info);
  });
  const next = (): Promise<RedfishInfo> => new Promise((resolve) => waiting.push(resolve));
  return { p, metrics, logs, results, next };
}

async function device(handler: Parameters<typeof startDevice>[1]): Promise<Device> {
  const d = await startDevice(cert, handler);
  devices.push(d);
  return d;
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('Redfish prober', () => {
  test('present: a service root, fields validated; no Authorization header or cookie sent', async () => {
    const d = await device((_req, res) => sendJson(res, { ...SERVICE_ROOT, Vendor: 'Contoso\u001b', Product: 'BMC' }));
    const { p, next, metrics } = prober(d.port);
    const got = next();
    p.request(lease(), true);
    const info = await got;
    assert.equal(info.status, 'present');
    assert.equal(info.version, '1.15.0');
    assert.equal(info.uuid, SERVICE_ROOT.UUID);
    assert.equal(info.vendor, 'Contoso');
    assert.equal(info.product, 'BMC');
    assert.ok(!Number.isNaN(Date.parse(info.probed_at)));
    assert.equal(d.requests.length, 1);
    assert.equal(d.requests[0].url, '/redfish/v1');
    assert.equal(d.requests[0].headers.authorization, undefined);
    assert.equal(d.requests[0].headers.cookie, undefined);
    assert.equal(metrics.value('kea_lease_monitor_redfish_probes_total', { result: 'present' }), 1);
    assert.equal(metrics.value('kea_lease_monitor_redfish_probe_duration_seconds'), 1);
    // A result stands: the same lease again starts no probe.
    p.request(lease(), true);
    assert.equal(p.pending, 0);
    await p.stop();
  });

  test('a redirect to /redfish/v1/ on the same address is followed once; one elsewhere is not', async () => {
    const d = await device((req, res) => {
      if (req.url === '/redfish/v1') res.writeHead(301, { location: '/redfish/v1/' }).end();
      else sendJson(res, SERVICE_ROOT);
    });
    const a = prober(d.port);
    const got = a.next();
    a.p.request(lease(), true);
    assert.equal((await got).status, 'present');
    assert.deepEqual(
      d.requests.map((r) => r.url),
      ['/redfish/v1', '/redfish/v1/'],
    );
    const e = await device((_req, res) => res.writeHead(302, { location: 'https://192.0.2.1/redfish/v1/' }).end());
    const b = prober(e.port);
    const got2 = b.next();
    b.p.request(lease(), true);
    assert.equal((await got2).status, 'absent');
    assert.equal(e.requests.length, 1);
  });

  test('garbage is absent at once: HTML, invalid JSON, a JSON object that is no root, 404', async () => {
    const answers: Array<(res: import('node:http').ServerResponse) => void> = [
      (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Welcome</body></html>'),
      (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"RedfishVersion": '),
      (res) => sendJson(res, { hello: 'world' }),
      (res) => res.writeHead(404).end('not found'),
    ];
    for (const answer of answers) {
      const d = await device((_req, res) => answer(res));
      const { p, next } = prober(d.port, { retryForMs: 60_000 });
      const got = next();
      p.request(lease(), true);
      const info = await got;
      assert.equal(info.status, 'absent');
      assert.equal(d.requests.length, 1, 'not retried');
      assert.equal(info.vendor, null);
    }
  });

  test('an oversized answer is abandoned past the bound (chunked, no Content-Length): absent', async () => {
    let sent = 0;
    const d = await device((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"RedfishVersion":"1.0.0","Vendor":"');
      const chunk = 'x'.repeat(16 * 1024);
      const pump = (): void => {
        while (sent < 64 * 1024 * 1024 && !res.destroyed && res.write(chunk)) sent += chunk.length;
        if (!res.destroyed && sent < 64 * 1024 * 1024) res.once('drain', pump);
      };
      res.on('close', () => undefined);
      pump();
    });
    const { p, next } = prober(d.port, { maxBytes: 64 * 1024 });
    const got = next();
    p.request(lease(), true);
    const info = await got;
    assert.equal(info.status, 'absent');
    assert.ok(sent < 8 * 1024 * 1024, `stopped reading early (server had sent ${sent} bytes)`);
  });

  test('a declared Content-Length over the bound is refused before the body', async () => {
    const d = await device((_req, res) => res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) }).write('{'));
    const { p, next } = prober(d.port, { maxBytes: 64 * 1024 });
    const got = next();
    p.request(lease(), true);
    assert.equal((await got).status, 'absent');
  });

  test('port closed: retried within the window, then absent', async () => {
    const port = await closedPort();
    const { p, next, logs } = prober(port, { retryForMs: 2500 });
    const got = next();
    p.request(lease(), true);
    const info = await got;
    assert.equal(info.status, 'absent');
    assert.ok(logs.filter((l) => l.includes('retrying')).length >= 1, 'retried');
  });

  test('slow start: refused at first, the service comes up later, present', async () => {
    const port = await closedPort();
    const { p, next, results } = prober(port, { retryForMs: 30_000 });
    const got = next();
    p.request(lease(), true);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(results.length, 0, 'still probing');
    assert.equal(p.pending, 1);
    devices.push(await startDevice(cert, (_req, res) => sendJson(res, SERVICE_ROOT), port));
    assert.equal((await got).status, 'present');
  });

  test('silence (accepts, never answers): each attempt times out; unreachable after the window', async () => {
    const sockets: Socket[] = [];
    const silent = createTcpServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    after(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const { p, next, metrics } = prober((silent.address() as AddressInfo).port, { timeoutMs: 300, retryForMs: 1000 });
    const got = next();
    const t0 = Date.now();
    p.request(lease(), true);
    const info = await got;
    assert.equal(info.status, 'unreachable');
    assert.ok(Date.now() - t0 < 5000, 'bounded by the window and the timeout');
    assert.equal(metrics.value('kea_lease_monitor_redfish_probes_total', { result: 'unreachable' }), 1);
  });

  test('5xx is retried (a service still starting), then absent if it never recovers', async () => {
    let n = 0;
    const d = await device((_req, res) => (++n < 3 ? res.writeHead(503).end() : sendJson(res, SERVICE_ROOT)));
    const { p, next } = prober(d.port, { retryForMs: 30_000 });
    const got = next();
    p.request(lease(), true);
    assert.equal((await got).status, 'present');
    assert.equal(n, 3);
  });

  test('--redfish-ca: the right CA verifies; another CA makes the device unreachable', async () => {
    const d = await device((_req, res) => sendJson(res, SERVICE_ROOT));
    const good = prober(d.port, { ca: cert.cert });
    const g = good.next();
    good.p.request(lease(), true);
    assert.equal((await g).status, 'present');
    const other = selfSigned('127.0.0.1');
    const bad = prober(d.port, { ca: other.cert, retryForMs: 0 });
    const b = bad.next();
    bad.p.request(lease(), true);
    assert.equal((await b).status, 'unreachable');
  });

  test('a lease not proven live is checked first: no check, no connection', async () => {
    const d = await device((_req, res) => sendJson(res, SERVICE_ROOT));
    const none = prober(d.port);
    none.p.request(lease(1, 'database'), false);
    assert.equal(none.p.pending, 0, 'without a database nothing is probed');
    let asked = 0;
    const forged = prober(d.port, {}, () => {
      asked++;
      return Promise.resolve(false);
    });
    forged.p.request(lease(2, 'database'), false);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(forged.p.pending, 0);
    assert.equal(asked, 1);
    assert.equal(d.requests.length, 0, 'a lease lease4 does not hold is never connected to');
    assert.equal(forged.metrics.value('kea_lease_monitor_redfish_probes_total', { result: 'not-live' }), 1);
    const live = prober(d.port, {}, () => Promise.resolve(true));
    const got = live.next();
    live.p.request(lease(3, 'database'), false);
    assert.equal((await got).status, 'present');
    assert.equal(d.requests.length, 1);
  });

  test('concurrency is bounded', async () => {
    let inFlight = 0;
    let most = 0;
    const d = await device((_req, res) => {
      most = Math.max(most, ++inFlight);
      setTimeout(() => {
        inFlight--;
        sendJson(res, SERVICE_ROOT);
      }, 100);
    });
    const { p, next } = prober(d.port, { concurrency: 3 });
    const all = Array.from({ length: 12 }, () => next());
    for (let i = 1; i <= 12; i++) p.request(lease(i), true);
    assert.equal(p.pending, 12);
    await Promise.all(all);
    assert.equal(most, 3);
  });

  test('attempts are paced: at most attemptsPerSecond start per second', async () => {
    const starts: number[] = [];
    const d = await device((_req, res) => {
      starts.push(Date.now());
      sendJson(res, SERVICE_ROOT);
    });
    const { p, next } = prober(d.port, { concurrency: 8, attemptsPerSecond: 10 });
    const all = Array.from({ length: 6 }, () => next());
    for (let i = 1; i <= 6; i++) p.request(lease(i), true);
    await Promise.all(all);
    const spread = Math.max(...starts) - Math.min(...starts);
    assert.ok(spread >= 450, `6 attempts at 10/s spread over ${spread} ms`);
  });

  test('50,000 devices waiting for a probe are data, not pending calls: bounded heap, stop at once', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const port = await closedPort();
    const { p } = prober(port, { retryForMs: 600_000, concurrency: 16, attemptsPerSecond: 20 });
    const leases = Array.from({ length: 50_000 }, (_, i) => ({
      ...lease(),
      hwaddr: Buffer.from([2, 0, 0, i >> 16, (i >> 8) & 255, i & 255]),
    }));
    gc();
    const before = process.memoryUsage().heapUsed;
    for (const l of leases) p.request(l, true);
    await new Promise((r) => setTimeout(r, 500));
    gc();
    const grew = (process.memoryUsage().heapUsed - before) / 2 ** 20;
    assert.equal(p.pending, 50_000);
    // One pending async call per device measured 65 MB here; a map entry each, 8 MB.
    assert.ok(grew < 25, `the heap grew ${grew.toFixed(1)} MB for 50,000 waiting devices`);
    const t0 = Date.now();
    await p.stop();
    assert.ok(Date.now() - t0 < 50, `stop took ${Date.now() - t0} ms`);
    assert.equal(p.pending, 0);
  });

  test('stop abandons probes at once', async () => {
    const port = await closedPort();
    const { p, results } = prober(port, { retryForMs: 600_000 });
    p.request(lease(), true);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    await p.stop();
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(results.length, 0);
  });
});
