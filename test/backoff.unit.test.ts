import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { mock, test } from 'node:test';
import { backoffDelay, sleep } from '../src/backoff';

test('backoffDelay: exponential ceiling, capped, never below half the base', () => {
  const lowest = () => 0;
  const highest = () => 1;
  assert.equal(backoffDelay(0, 250, 30_000, lowest), 125);
  assert.equal(backoffDelay(0, 250, 30_000, highest), 250);
  assert.equal(backoffDelay(3, 250, 30_000, highest), 2000);
  assert.equal(backoffDelay(3, 250, 30_000, lowest), 125, 'the floor stays base/2: a retry never follows at once');
  assert.equal(backoffDelay(20, 250, 30_000, highest), 30_000, 'capped');
  assert.equal(backoffDelay(1e9, 250, 30_000, highest), 30_000, 'no overflow for absurd attempt counts');
  assert.equal(backoffDelay(5, 250, 100, lowest), 100, 'a cap below base/2 wins over the floor');
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(4, 250, 30_000);
    assert.ok(d >= 125 && d <= 4000 && Number.isInteger(d), `in range: ${d}`);
  }
});

test('sleep: resolves when the time has passed, not before', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let done = false;
  const p = sleep(1000).then(() => (done = true));
  t.mock.timers.tick(999);
  await Promise.resolve();
  assert.equal(done, false);
  t.mock.timers.tick(1);
  await p;
  assert.equal(done, true);
});

test('sleep: an abort wakes it at once, and an aborted signal does not wait at all', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const stop = new AbortController();
  let done = false;
  const p = sleep(60_000, stop.signal).then(() => (done = true));
  t.mock.timers.tick(10);
  stop.abort();
  await p;
  assert.equal(done, true);
  await sleep(60_000, stop.signal); // already aborted: resolves without any tick
});

test('sleep: an abort leaves no timer and no listener behind', async () => {
  mock.timers.reset();
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const stop = new AbortController();
  const p = sleep(60_000, stop.signal);
  assert.equal(timers(), before + 1);
  stop.abort();
  await p;
  assert.equal(timers(), before, 'the 60 s timer is cleared');
  // Finished sleeps on a long-lived signal do not pile up listeners on it.
  const shared = new AbortController();
  for (let i = 0; i < 20; i++) await sleep(0, shared.signal);
  assert.equal(getEventListeners(shared.signal, 'abort').length, 0);
});
