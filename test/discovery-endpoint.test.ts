import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, IncomingMessage } from 'node:http';
import { AddressInfo, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DbOptions } from '../src/options';
import { CSV_HEADER, csvRow, fileStem, macFor, manyLeases, TestLease } from './helpers/leases';
import { tempDir } from './helpers/monitor';
import { dbFlags, TestCluster } from './helpers/pg';
import { waitFor } from './helpers/wait';

// GET /discovery on the metrics listener of the built binary, with records written from real leases.
const BIN = join(__dirname, '..', 'dist', 'kea-lease-monitor');

let cluster: TestCluster;
let db: DbOptions;

before(async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run make build`);
  cluster = TestCluster.start();
  db = await cluster.freshDatabase();
});
after(() => cluster.stop());

interface Daemon {
  child: ChildProcess;
  port: number;
  out: string;
  stop(): Promise<void>;
}

/** The binary in file mode on a lease file holding `leases`, once every one of them has its record. */
async function startDaemon(
  leases: TestLease[],
  extra: string[] = [],
  env: Record<string, string> = {},
  { out = tempDir('klm-ep-out-'), awaitRecords = true } = {},
): Promise<Daemon> {
  const file = join(tempDir('klm-ep-leases-'), 'kea-leases4.csv');
  writeFileSync(file, CSV_HEADER + '\n' + leases.map(csvRow).join(''));
  const port = await freePort();
  // The read position outside the output directory: after the records, nothing writes there.
  const state = join(dirname(file), 'position.json');
  const child = spawn(
    BIN,
    [...dbFlags(db), '--lease-file', file, '--state-file', state, '--output-dir', out, '--metrics-port', String(port), ...extra],
    {
      env: { PATH: '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  if (awaitRecords) {
    await waitFor(
      `records of ${leases.length} leases (${stderr.slice(-300)})`,
      () => leases.every((l) => existsSync(join(out, `${fileStem(l.mac)}.json`))),
      20_000,
    );
  } else {
    await waitFor('the metrics listener', async () => (await call(port, 'GET', '/healthz').catch(() => null))?.status === 200);
  }
  return {
    child,
    port,
    out,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function call(port: number, method: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function lines(body: string): Record<string, unknown>[] {
  assert.ok(body.endsWith('\n'), 'the body ends with a newline');
  return body
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The monitor's peak resident set so far (VmHWM), in bytes. */
function peakRss(pid: number | undefined): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

async function metric(port: number, line: RegExp): Promise<number> {
  const text = (await call(port, 'GET', '/metrics')).body;
  const m = line.exec(text);
  assert.ok(m, `metric ${line} in /metrics`);
  return Number(m[1]);
}

describe('GET /discovery on the built binary', () => {
  test('serves every record written from real leases, one JSON object per line, and nothing else from the directory', async () => {
    const leases = manyLeases(3, 5000);
    leases[1].hostname = 'node {{ "one" }}';
    const d = await startDaemon(leases);
    try {
      // Beside the records: the writer's temp file, foreign files, an unparsable and an oversized "record".
      writeFileSync(join(d.out, `.${fileStem(leases[0].mac)}.json.1.1.tmp`), '{"mac":"tmp"}');
      writeFileSync(join(d.out, 'notes.txt'), 'operator notes');
      writeFileSync(join(d.out, 'other.json'), '{"mac":"not-a-record-name"}');
      writeFileSync(join(d.out, `${fileStem(macFor(90001))}.json`), '{"mac": "02:00:00:01:5f:91", ');
      writeFileSync(join(d.out, `${fileStem(macFor(90002))}.json`), JSON.stringify({ mac: macFor(90002), pad: 'x'.repeat(70_000) }));

      const r = await call(d.port, 'GET', '/discovery');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/x-ndjson; charset=utf-8');
      assert.equal(r.headers['transfer-encoding'], 'chunked', 'streamed, no Content-Length computed up front');
      const got = lines(r.body);
      assert.deepEqual(got.map((x) => x.mac).sort(), leases.map((l) => l.mac).sort());
      for (const record of got) {
        const onDisk: unknown = JSON.parse(readFileSync(join(d.out, `${fileStem(String(record.mac))}.json`), 'utf8'));
        assert.deepEqual(record, onDisk, 'each line is the record on disk');
      }
      assert.equal(got.find((x) => x.mac === leases[1].mac)?.hostname, 'node {{ "one" }}');
      assert.equal(await metric(d.port, /^kea_lease_monitor_discovery_records_served_total\{result="skipped"\} (\d+)$/m), 2);
      assert.equal(await metric(d.port, /^kea_lease_monitor_discovery_records_served_total\{result="served"\} (\d+)$/m), 3);
      // A query string changes nothing.
      assert.deepEqual(lines((await call(d.port, 'GET', '/discovery?limit=1')).body).length, 3);
    } finally {
      await d.stop();
    }
  });

  test('read-only: GET and HEAD only; every other method is 405 and leaves the directory as it was', async () => {
    const d = await startDaemon(manyLeases(2, 6000));
    try {
      const snapshot = () =>
        readdirSync(d.out)
          .sort()
          .map((n) => [n, readFileSync(join(d.out, n), 'utf8')]);
      const before = snapshot();
      assert.equal(before.length, 2);
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        const r = await call(d.port, method, '/discovery');
        assert.equal(r.status, 405, method);
        assert.equal(r.headers.allow, 'GET, HEAD');
      }
      const head = await call(d.port, 'HEAD', '/discovery');
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      assert.deepEqual(snapshot(), before);
    } finally {
      await d.stop();
    }
  });

  test('an output directory that cannot be read is a 503 naming the error, not an empty list', async () => {
    const d = await startDaemon(manyLeases(1, 6500));
    try {
      // A file where the directory was (merely removed, the monitor would make it again at its next write).
      rmSync(d.out, { recursive: true });
      writeFileSync(d.out, 'not a directory');
      const r = await call(d.port, 'GET', '/discovery');
      assert.equal(r.status, 503);
      assert.equal(r.body, 'cannot read the records: ENOTDIR\n');
    } finally {
      await d.stop();
    }
  });

  test('--no-discovery-endpoint and KEA_LM_DISCOVERY_ENDPOINT=false turn it off; /metrics stays', async () => {
    for (const [extra, env] of [
      [['--no-discovery-endpoint'], {}],
      [[], { KEA_LM_DISCOVERY_ENDPOINT: 'false' }],
    ] as [string[], Record<string, string>][]) {
      const d = await startDaemon(manyLeases(1, 7000), extra, env);
      try {
        assert.equal((await call(d.port, 'GET', '/discovery')).status, 404);
        assert.equal((await call(d.port, 'GET', '/metrics')).status, 200);
      } finally {
        await d.stop();
      }
    }
  });

  test('an HA standby serves the records in its own directory too', async () => {
    const leases = manyLeases(2, 9000);
    const active = await startDaemon(leases, ['--ha-group', 'endpoint']);
    const out = tempDir('klm-ep-standby-');
    const kept = {
      ...JSON.parse(readFileSync(join(active.out, `${fileStem(leases[0].mac)}.json`), 'utf8')),
      last_seen: '2026-01-01T00:00:00.000Z',
    };
    writeFileSync(join(out, `${fileStem(leases[0].mac)}.json`), JSON.stringify(kept));
    const standby = await startDaemon(leases, ['--ha-group', 'endpoint'], {}, { out, awaitRecords: false });
    try {
      assert.equal(await metric(standby.port, /^kea_lease_monitor_ha_active (\d+)$/m), 0);
      assert.deepEqual(lines((await call(standby.port, 'GET', '/discovery')).body), [kept]);
      assert.equal(lines((await call(active.port, 'GET', '/discovery')).body).length, 2);
    } finally {
      await standby.stop();
      await active.stop();
    }
  });

  test('80 MB of records stream in bounded memory; stalled and aborted clients hold no slot for ever', async () => {
    const leases = manyLeases(2, 8000);
    const d = await startDaemon(leases);
    try {
      const planted = 40_000;
      const pad = 'p'.repeat(2000);
      for (let i = 0; i < planted; i++) {
        const mac = macFor(100_000 + i);
        writeFileSync(join(d.out, `${fileStem(mac)}.json`), JSON.stringify({ mac, ip: '10.1.0.1', subnet_id: 1, pad }));
      }
      const baseline = peakRss(d.child.pid);

      // Four clients that stop reading hold the four slots; a fifth is told to come back.
      const stalled: IncomingMessage[] = await Promise.all(
        Array.from(
          { length: 4 },
          () =>
            new Promise<IncomingMessage>((resolve, reject) => {
              const req = request({ host: '127.0.0.1', port: d.port, path: '/discovery' }, (res) => {
                res.pause();
                resolve(res);
              });
              req.on('error', reject);
              req.end();
            }),
        ),
      );
      const busy = await call(d.port, 'GET', '/discovery');
      assert.equal(busy.status, 503);
      assert.equal(busy.headers['retry-after'], '1');
      for (const res of stalled) res.destroy();

      const full = await waitFor('a slot free again', async () => {
        const r = await call(d.port, 'GET', '/discovery');
        return r.status === 200 ? r : null;
      });
      assert.ok(full);
      assert.ok(full.body.length > 80_000_000, `body of ${full.body.length} bytes`);
      const macs = lines(full.body).map((x) => String(x.mac));
      assert.equal(macs.length, planted + leases.length);
      assert.equal(new Set(macs).size, macs.length, 'each record once');
      const growth = peakRss(d.child.pid) - baseline;
      assert.ok(growth < 40 * 2 ** 20, `peak RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB while serving ${full.body.length} bytes`);
    } finally {
      await d.stop();
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
