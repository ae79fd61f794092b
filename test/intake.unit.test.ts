// Selection before the queue: leases the policy (or kea-dhcp4's verdict) leaves out take no queue
// slot, are counted by reason, and resolve at once; selected ones queue as before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Lease } from '../src/lease';
import { M, Metrics } from '../src/metrics';
import { LeaseIntake } from '../src/pipeline/intake';
import { LeaseQueue } from '../src/pipeline/queue';
import { compilePolicy } from '../src/policy/select';
import { memoryLogger } from './helpers/monitor';

const POLICY = compilePolicy({
  subnetIds: [1],
  allowMacPrefix: [],
  denyMacPrefix: ['02:bb'],
  allowHostname: [],
  denyHostname: [],
  allowAddress: [],
});

function lease(i: number, prefix: number, subnetId = 1): Lease {
  return {
    address: 0x0a000000 + i,
    hwaddr: Buffer.from([2, prefix, 0, (i >> 16) & 255, (i >> 8) & 255, i & 255]),
    subnetId,
    hostname: null,
    source: 'database',
  };
}

test('20,000 leases the policy denies take no queue slot; a selected one queues', async () => {
  const queue = new LeaseQueue(8);
  const metrics = new Metrics([1]);
  const intake = new LeaseIntake(queue, { policy: POLICY }, memoryLogger().logger, metrics);
  for (let i = 0; i < 20_000; i++) assert.equal(intake.offer(lease(i, 0xbb)), true, 'a denied lease is handled, not dropped');
  await Promise.all(Array.from({ length: 100 }, (_, i) => intake.put(lease(i, 0xbb))));
  assert.equal(queue.size, 0);
  assert.equal(queue.peak, 0);
  assert.equal(metrics.value(M.notSelected[0], { reason: 'mac-denied', subnet_id: 1 }), 20_100);
  assert.equal(intake.offer(lease(1, 0xaa)), true);
  assert.equal(queue.size, 1, 'the selected lease is queued');
});

test("kea-dhcp4's verdict is applied after the policy, before the queue", () => {
  const queue = new LeaseQueue(8);
  const metrics = new Metrics([1]);
  const keaGate = { admit: () => ({ selected: false as const, reason: 'kea-not-honoured' as const }) };
  const intake = new LeaseIntake(queue, { policy: POLICY, keaGate }, memoryLogger().logger, metrics);
  intake.offer(lease(1, 0xaa));
  intake.offer(lease(2, 0xbb));
  assert.equal(queue.size, 0);
  assert.equal(metrics.value(M.notSelected[0], { reason: 'kea-not-honoured', subnet_id: 1 }), 1);
  assert.equal(
    metrics.value(M.notSelected[0], { reason: 'mac-denied', subnet_id: 1 }),
    1,
    'the policy first: the denied one never asks Kea',
  );
});

test('a lease left out is logged with its fields at debug, and at info costs no formatting', async () => {
  const lines = (level: string) => {
    const { logger, logs } = memoryLogger(level);
    let formatted = 0;
    const fields = lease(7, 0xbb);
    // Counts reads of the hostname: the fields object is built only for a line that is written.
    const watched = Object.defineProperty<Lease>({ ...fields }, 'hostname', {
      get: () => {
        formatted++;
        return 'bmc-7';
      },
    });
    new LeaseIntake(new LeaseQueue(8), { policy: POLICY }, logger, new Metrics([1])).offer(watched);
    return { logs, formatted };
  };
  const debug = lines('debug');
  await new Promise((r) => setImmediate(r));
  assert.equal(debug.logs.length, 1);
  assert.match(debug.logs[0], /"reason":"mac-denied"/);
  assert.match(debug.logs[0], /"mac":"02:bb:00:00:00:07"/);
  assert.match(debug.logs[0], /"hostname":"bmc-7"/);
  const info = lines('info');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(info.logs, []);
  // selectLease reads the hostname for the deny rules; the log line would read it once more.
  assert.equal(info.formatted, debug.formatted - 1);
});
