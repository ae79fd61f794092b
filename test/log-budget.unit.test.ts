import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LogBudget } from '../src/pipeline/log-budget';

test('LogBudget: at most `limit` lines per window; the next window first says how many were held back', () => {
  const b = new LogBudget(3, 1000);
  const first = Array.from({ length: 10 }, (_, i) => b.take(5000 + i));
  assert.deepEqual(
    first.map((x) => x.log),
    [true, true, true, false, false, false, false, false, false, false],
  );
  assert.ok(first.every((x) => x.heldBack === 0));
  assert.deepEqual(b.take(5999), { log: false, heldBack: 0 }, 'still the same window');
  assert.deepEqual(b.take(6000), { log: true, heldBack: 8 }, 'a new window: 8 were not logged');
  assert.deepEqual(b.take(7500), { log: true, heldBack: 0 });
});
