import assert from 'node:assert/strict';
import { appendFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Health } from '../src/health';
import { M, Metrics } from '../src/metrics';
import { MAX_SUBNET_LABELS, OTHER_SUBNET } from '../src/subnet-labels';
import { CSV_HEADER, csvRow, manyLeases } from './helpers/leases';
import { memoryLogger, tempDir, testOptions } from './helpers/monitor';
import { TestCluster } from './helpers/pg';
import { waitFor } from './helpers/wait';
import { Monitor } from '../src/monitor';

const unreachable = { host: '127.0.0.1', port: 1, database: 'kea', user: 'kea' };

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, text: await r.text() };
}

describe('metrics on prom-client', () => {
  test('every declared counter is exported at zero before its first increment, with the default process metrics', async () => {
    const text = await new Metrics([7]).render();
    assert.match(text, /^kea_lease_monitor_reservations_total\{result="created",subnet_id="7"\} 0$/m);
    assert.match(text, /^kea_lease_monitor_reservations_total\{result="limit",subnet_id="7"\} 0$/m);
    assert.match(text, /^kea_lease_monitor_leases_not_selected_total\{reason="mac-denied",subnet_id="7"\} 0$/m);
    assert.match(text, /^kea_lease_monitor_input_rejected_total\{source="database",reason="invalid-payload"\} 0$/m);
    assert.match(text, /^kea_lease_monitor_db_errors_total\{class="transient"\} 0$/m);
    assert.match(text, /^kea_lease_monitor_batches_total 0$/m);
    assert.match(text, /^kea_lease_monitor_ha_active 1$/m);
    assert.match(text, /^# TYPE kea_lease_monitor_reservation_latency_seconds histogram$/m);
    assert.match(text, /^process_resident_memory_bytes \d+/m);
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    for (const [name] of Object.values(M)) {
      if (name.endsWith('_total')) assert.match(text, new RegExp(`^${name}(\\{[^}]*\\})? 0$`, 'm'), `${name} at zero`);
      else assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} declared`);
    }
  });

  test('inc/set/observe keep the old API; value() sums the series matching the labels; registries are per instance', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.subnets.confirm(1);
    a.subnets.confirm(2);
    a.inc(...M.reservations, { result: 'created', subnet_id: 1 });
    a.inc(...M.reservations, { result: 'created', subnet_id: 2 }, 3);
    a.set(...M.queueDepth, 12);
    a.observe(...M.batchDuration, 0.02);
    assert.equal(a.value('kea_lease_monitor_reservations_total', { result: 'created' }), 4);
    assert.equal(a.value('kea_lease_monitor_reservations_total', { result: 'created', subnet_id: '2' }), 3);
    assert.equal(a.total('kea_lease_monitor_reservations_total'), 4);
    assert.equal(a.value('kea_lease_monitor_queue_depth'), 12);
    assert.equal(b.total('kea_lease_monitor_reservations_total'), 0, 'another monitor counts apart');
    const text = await a.render();
    assert.match(text, /^kea_lease_monitor_reservations_total\{result="created",subnet_id="2"\} 3$/m);
    assert.match(text, /^kea_lease_monitor_batch_duration_seconds_bucket\{le="0.025"\} 1$/m);
    assert.match(text, /^kea_lease_monitor_queue_depth 12$/m);
    assert.throws(() => a.inc(...M.reservations, { outcome: 'x' }), /has no label outcome/);
    // An entry another module adds as a plain [name, help] pair still works.
    a.inc('kea_lease_monitor_example_total', 'An undeclared counter', { kind: 'x' });
    assert.match(await a.render(), /^kea_lease_monitor_example_total\{kind="x"\} 1$/m);
  });

  test('subnet_id labels: configured or confirmed subnets only, at most MAX_SUBNET_LABELS learned, the rest "other"', async () => {
    const m = new Metrics([7]);
    m.inc(...M.reservations, { result: 'stale', subnet_id: 12345 });
    m.inc(...M.notSelected, { reason: 'mac-denied', subnet_id: 999 });
    m.inc(...M.reservations, { result: 'created', subnet_id: 7 });
    assert.equal(m.value(M.reservations[0], { result: 'stale', subnet_id: OTHER_SUBNET }), 1);
    assert.equal(m.value(M.notSelected[0], { subnet_id: OTHER_SUBNET }), 1);
    assert.equal(m.value(M.reservations[0], { result: 'created', subnet_id: '7' }), 1, 'a configured subnet is its own label');
    m.subnets.confirm(12345);
    m.inc(...M.reservations, { result: 'created', subnet_id: 12345 });
    assert.equal(m.value(M.reservations[0], { result: 'created', subnet_id: '12345' }), 1, 'a confirmed one too');
    // Far more subnets confirmed than the cap: the label values stop growing at the cap.
    for (let id = 100_000; id < 100_000 + 3 * MAX_SUBNET_LABELS; id++) {
      m.subnets.confirm(id);
      m.inc(...M.reservations, { result: 'created', subnet_id: id });
    }
    const text = await m.render();
    const values = new Set([...text.matchAll(/^kea_lease_monitor_reservations_total\{[^}]*subnet_id="([^"]*)"/gm)].map((x) => x[1]));
    assert.equal(values.size, MAX_SUBNET_LABELS + 2, 'the cap, plus the configured subnet and "other"');
    assert.ok(values.has('7') && values.has(OTHER_SUBNET) && values.has('12345'));
    assert.equal(
      m.value(M.reservations[0], { result: 'created' }),
      2 + 3 * MAX_SUBNET_LABELS,
      'nothing is lost: the rest count as "other"',
    );
  });

  test('Health: ready only when every component is; reasons name the component', () => {
    const h = new Health();
    assert.deepEqual(h.readiness(), { ready: false, reasons: ['starting'] });
    h.set('source', true);
    h.set('writer', false, 'cannot write');
    assert.deepEqual(h.readiness(), { ready: false, reasons: ['writer: cannot write'] });
    h.set('writer', true);
    assert.deepEqual(h.readiness(), { ready: true, reasons: [] });
  });

  test('/healthz, /readyz and /metrics on the listener; 404 elsewhere', async () => {
    const m = new Metrics();
    const server = await m.serve(0, '127.0.0.1');
    const port = (server.address() as AddressInfo).port;
    try {
      assert.deepEqual(await get(port, '/healthz'), { status: 200, text: 'ok\n' });
      assert.deepEqual(await get(port, '/readyz'), { status: 503, text: 'not ready: starting\n' });
      assert.match((await get(port, '/metrics')).text, /^kea_lease_monitor_ready 0$/m);
      m.health.set('source', true);
      assert.deepEqual(await get(port, '/readyz'), { status: 200, text: 'ready\n' });
      assert.match((await get(port, '/metrics')).text, /^kea_lease_monitor_ready 1$/m);
      assert.equal((await get(port, '/nope')).status, 404);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('readiness of a running monitor', () => {
  test('database mode: not ready while the listener cannot connect, with the reason', async () => {
    const { logger } = memoryLogger('error');
    const port = await freePort();
    const monitor = new Monitor(testOptions(unreachable, { useDatabaseEvents: true, metricsPort: port, metricsHost: '127.0.0.1' }), logger);
    // start() resolves only once listening, which never happens here.
    void monitor.start().catch(() => undefined);
    try {
      const r = await waitFor('a /readyz answer', () => get(port, '/readyz').catch(() => null));
      assert.equal(r?.status, 503);
      await waitFor('the disconnect reason', async () =>
        (await get(port, '/readyz')).text.includes('source: database listener disconnected'),
      );
      assert.equal((await get(port, '/healthz')).status, 200);
    } finally {
      await monitor.stop();
    }
  });

  test('file mode: ready once replayed into a reachable database; 503 naming the writer while writes fail', async () => {
    const { logger } = memoryLogger('error');
    const cluster = TestCluster.start();
    try {
      const db = await cluster.freshDatabase();
      for (const [target, ready] of [
        [db, true],
        [unreachable, false],
      ] as const) {
        const port = await freePort();
        const file = join(tempDir('klm-ready-'), 'kea-leases4.csv');
        writeFileSync(file, CSV_HEADER + '\n' + csvRow(manyLeases(1, 5)[0]));
        const monitor = new Monitor(
          testOptions(target, { leaseFile: file, metricsPort: port, metricsHost: '127.0.0.1', pollInterval: 0.1 }),
          logger,
        );
        void monitor.start().catch(() => undefined);
        try {
          if (ready) {
            await waitFor('ready', async () => (await get(port, '/readyz').catch(() => null))?.status === 200);
            const text = (await get(port, '/metrics')).text;
            assert.match(text, /^kea_lease_monitor_ready 1$/m);
            assert.match(text, /^kea_lease_monitor_reservations_total\{result="created",subnet_id="1"\} 1$/m);
            assert.match(text, /^kea_lease_monitor_last_write_timestamp_seconds [1-9]/m);
            assert.doesNotMatch(
              text,
              /^kea_lease_monitor_reservation_latency_seconds_count\{source="memfile"\} [1-9]/m,
              'the replay is not live traffic',
            );
            // A row appended while running: read -> reservation is observed.
            appendFileSync(file, csvRow(manyLeases(1, 6)[0]));
            await waitFor('a latency observation', async () =>
              /^kea_lease_monitor_reservation_latency_seconds_count\{source="memfile"\} 1$/m.test((await get(port, '/metrics')).text),
            );
          } else {
            await waitFor('writer not ready', async () => {
              const r = await get(port, '/readyz').catch(() => null);
              return r?.status === 503 && r.text.includes('writer: cannot write reservations (transient error)');
            });
            const text = (await get(port, '/metrics')).text;
            assert.match(text, /^kea_lease_monitor_ready 0$/m);
            assert.match(text, /^kea_lease_monitor_last_write_timestamp_seconds 0$/m);
          }
        } finally {
          await monitor.stop();
        }
      }
    } finally {
      cluster.stop();
    }
  });
});

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
