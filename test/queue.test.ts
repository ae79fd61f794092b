import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Lease } from '../src/lease';
import { LeaseQueue } from '../src/pipeline/queue';

const lease = (n: number): Lease => ({
  address: 0x0a000000 + n,
  hwaddr: Buffer.from([2, 0, 0, (n >> 16) & 255, (n >> 8) & 255, n & 255]),
  subnetId: 1,
  hostname: null,
  source: 'memfile',
});

/** Lets every pending promise continuation run. */
const settle = () => new Promise((r) => setImmediate(r));

/** Counts offer() calls on a real queue: each woken putter makes one. */
function counted(limit: number): { queue: LeaseQueue; offers: () => number } {
  const queue = new LeaseQueue(limit);
  let n = 0;
  const offer = queue.offer.bind(queue);
  queue.offer = (l, done) => (n++, offer(l, done));
  return { queue, offers: () => n };
}

describe('lease queue', () => {
  test('taking k entries wakes k waiting putters, not all of them, oldest first', async () => {
    const { queue, offers } = counted(10);
    const puts = Array.from({ length: 1000 }, (_, i) => queue.put(lease(i)));
    await settle();
    assert.equal(queue.size, 10);
    assert.equal(queue.waitingPutters, 990);
    const before = offers();
    const taken = queue.take(3);
    await settle();
    assert.equal(offers() - before, 3, 'one offer per woken putter');
    assert.equal(queue.size, 10);
    assert.equal(queue.waitingPutters, 987);
    for (const e of taken) e.waiters.forEach((w) => w());
    const next = queue.take(10).map((e) => e.lease.address - 0x0a000000);
    assert.deepEqual(next, [3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'FIFO');
    queue.close();
    queue.abandonRemaining();
    await Promise.allSettled(puts);
  });

  test('a woken putter whose device is already queued passes the free slot on', async () => {
    const { queue } = counted(2);
    const puts = [queue.put(lease(1)), queue.put(lease(2))];
    // Two waiting puts about device 3, then device 4.
    puts.push(queue.put(lease(3)), queue.put({ ...lease(3), address: 0x0a0000ff }), queue.put(lease(4)));
    await settle();
    assert.equal(queue.waitingPutters, 3);
    queue.take(1); // device 1 leaves: the first put about device 3 takes the slot
    await settle();
    assert.equal(queue.waitingPutters, 2);
    queue.take(1); // device 2 leaves: the second put about device 3 merges, so device 4 must get the slot
    await settle();
    assert.equal(queue.waitingPutters, 0, 'device 4 is not left waiting beside a free slot');
    assert.deepEqual(
      queue.take(2).map((e) => e.lease.address),
      [0x0a0000ff, 0x0a000004],
    );
    queue.close();
    queue.abandonRemaining();
    await Promise.allSettled(puts);
  });
});
