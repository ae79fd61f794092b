import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Lease } from '../src/lease';
import { LeaseQueue, QueueClosedError } from '../src/pipeline/queue';

const lease = (device: number, address = 0x0a000000 + device, subnetId = 1): Lease => ({
  address,
  hwaddr: Buffer.from([2, 0, 0, 0, (device >> 8) & 255, device & 255]),
  subnetId,
  hostname: null,
  source: 'memfile',
});
const settle = () => new Promise((r) => setImmediate(r));

test('news about a queued device replaces the older news in place; another subnet is another device', () => {
  const q = new LeaseQueue(10);
  assert.ok(q.offer(lease(1)));
  assert.ok(q.offer(lease(2)));
  assert.ok(q.offer(lease(1, 0x0a0000aa)));
  assert.ok(q.offer(lease(1, 0x0a0000bb, 2)));
  assert.equal(q.size, 3);
  assert.deepEqual(
    q.take(10).map((e) => [e.lease.subnetId, e.lease.address]),
    [
      [1, 0x0a0000aa],
      [1, 0x0a000002],
      [2, 0x0a0000bb],
    ],
    'oldest first, the replaced entry keeps its place',
  );
});

test('offer refuses past the limit, except news about a queued device', () => {
  const q = new LeaseQueue(2);
  assert.ok(q.offer(lease(1)));
  assert.ok(q.offer(lease(2)));
  assert.equal(q.offer(lease(3)), false);
  assert.ok(q.offer(lease(2, 0x0a0000cc)), 'coalescing needs no room');
  assert.equal(q.size, 2);
});

test('put resolves only once the lease is handled; every put merged into an entry is told', async () => {
  const q = new LeaseQueue(5);
  const handled: string[] = [];
  const a = q.put(lease(1)).then(() => handled.push('a'));
  const b = q.put(lease(1, 0x0a0000aa)).then(() => handled.push('b'));
  await settle();
  assert.deepEqual(handled, [], 'queued is not handled');
  const [entry] = q.take(1);
  assert.equal(entry.waiters.length, 2);
  entry.waiters.forEach((w) => w());
  await Promise.all([a, b]);
  assert.deepEqual(handled.sort(), ['a', 'b']);
});

test('put waits for room and gets in when the writer takes', async () => {
  const q = new LeaseQueue(1);
  void q.put(lease(1));
  let second = false;
  void q.put(lease(2)).then(() => (second = true));
  await settle();
  assert.equal(q.size, 1);
  assert.equal(q.waitingPutters, 1);
  q.take(1)[0].waiters.forEach((w) => w());
  await settle();
  assert.equal(q.size, 1, 'the waiting put took the freed slot');
  assert.equal(second, false);
  q.take(1)[0].waiters.forEach((w) => w());
  await settle();
  assert.equal(second, true);
});

test('close: waiting and unwritten puts reject with QueueClosedError, new offers are refused', async () => {
  const q = new LeaseQueue(1);
  const queued = q.put(lease(1));
  const waiting = q.put(lease(2));
  await settle();
  q.close();
  await assert.rejects(waiting, QueueClosedError);
  assert.equal(q.offer(lease(3)), false);
  assert.equal(q.abandonRemaining(), 1);
  await assert.rejects(queued, QueueClosedError);
  assert.equal(q.size, 0);
});

test('whenNotEmpty resolves at once when something is queued, else on the next offer or wakeAll', async () => {
  const q = new LeaseQueue(3);
  let woke = false;
  const p = q.whenNotEmpty().then(() => (woke = true));
  await settle();
  assert.equal(woke, false);
  q.offer(lease(1));
  await p;
  await q.whenNotEmpty();
  q.take(1);
  const stopped = q.whenNotEmpty();
  q.wakeAll();
  await stopped;
});
