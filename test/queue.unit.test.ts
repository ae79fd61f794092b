import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Lease } from '../src/lease';
import { HandledGroup } from '../src/pipeline/handled-group';
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

test('a group resolves once all its leases are handled, merged ones each counted, waiting ones included', async () => {
  const q = new LeaseQueue(2);
  const g = new HandledGroup();
  await q.enqueueInto(lease(1), g);
  await q.enqueueInto(lease(1, 0x0a0000aa), g);
  await q.enqueueInto(lease(2), g);
  const third = q.enqueueInto(lease(3), g);
  let done = false;
  const all = g.all().then(() => (done = true));
  const [first] = q.take(1);
  assert.deepEqual(first.waiters, [g.done, g.done], 'one shared waiter, once per enqueue');
  await third;
  first.waiters.forEach((w) => w());
  await settle();
  assert.equal(done, false, 'two leases still queued');
  for (const e of q.take(2)) e.waiters.forEach((w) => w());
  await all;
  assert.equal(g.idle, true);
});

test('atMost(n) resolves once the group is down to n unhandled leases, and rejects when they are abandoned', async () => {
  const g = new HandledGroup();
  for (let i = 0; i < 4; i++) g.expect();
  await g.atMost(4); // already there
  let down = false;
  const two = g.atMost(2).then(() => (down = true));
  g.done();
  await settle();
  assert.equal(down, false, 'three still unhandled');
  g.done();
  await two;
  const none = g.atMost(0);
  g.abandon(new QueueClosedError());
  await assert.rejects(none, QueueClosedError);
});

test('a group with leases left at abandonRemaining rejects with QueueClosedError; an empty group resolves at once', async () => {
  await new HandledGroup().all();
  const q = new LeaseQueue(3);
  const g = new HandledGroup();
  await q.enqueueInto(lease(1), g);
  await q.enqueueInto(lease(2), g);
  q.take(1)[0].waiters.forEach((w) => w());
  const all = g.all();
  q.close();
  await assert.rejects(q.enqueueInto(lease(3), g), QueueClosedError);
  assert.equal(q.abandonRemaining(), 1);
  await assert.rejects(all, QueueClosedError);
});

test('a lease queued in a group costs its entry, not a promise chain (heap per lease)', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const n = 50_000;
  const leases = Array.from({ length: n }, (_, i) => lease(i, 0x0a000000 + i));
  const q = new LeaseQueue(n);
  const g = new HandledGroup();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (const l of leases) await q.enqueueInto(l, g);
  gc();
  const perLease = (process.memoryUsage().heapUsed - before) / n;
  // The map entry, its key and a waiters array: about 200 B; a promise per lease was about 1,000 B.
  assert.ok(perLease < 400, `${perLease.toFixed(0)} B per queued lease`);
  assert.equal(q.size, n);
});

test('whenAtMost resolves once takes bring the queue down to n, and at once after close', async () => {
  const q = new LeaseQueue(10);
  for (let d = 1; d <= 6; d++) q.offer(lease(d));
  let drained = false;
  void q.whenAtMost(3).then(() => (drained = true));
  q.take(2);
  await settle();
  assert.equal(drained, false, 'four still queued');
  q.take(1);
  await settle();
  assert.equal(drained, true);
  await q.whenAtMost(3); // already there
  let closed = false;
  void q.whenAtMost(0).then(() => (closed = true));
  q.close();
  await settle();
  assert.equal(closed, true, 'a stop never leaves a reader waiting');
  await q.whenAtMost(0);
});
