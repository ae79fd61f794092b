// A one-shot command's output is whole even when its reader is slower than it: the process exits only
// once stdout has drained (a pipe holds 64 KiB; the rest waits in the process).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { insertLeases, manyLeases } from './helpers/leases';
import { BIN, PASSWORD, setup } from './helpers/lifecycle';
import { connect, TestCluster } from './helpers/pg';

let cluster: TestCluster;
before(() => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run make build`);
  cluster = TestCluster.start();
});
after(() => cluster.stop());

test('plan --json into a reader that waits a second before reading: every line arrives', async () => {
  const s = await setup(cluster, 'database');
  const c = await connect(s.db);
  await insertLeases(c, manyLeases(3000));
  await c.end();
  const child = spawn(BIN, ['plan', ...s.args, '--json'], {
    env: { PATH: '/usr/bin:/bin', KEA_DB_PASSWORD: PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pause();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await sleep(1000);
  const chunks: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  child.stdout.resume();
  assert.equal(await exited, 0, stderr);
  const lines = Buffer.concat(chunks).toString('utf8').trim().split('\n');
  assert.ok(lines.length > 3000, `${lines.length} lines: ${lines.join('\n').slice(0, 300)} ${stderr}`);
  // The last line is the summary: it names every lease the plan read.
  const summary = JSON.parse(lines.at(-1) as string) as Record<string, unknown>;
  assert.equal(lines.length - 1, summary.leases, `one line per lease, then the summary: ${lines.at(-1)}`);
});
