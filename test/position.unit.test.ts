import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { identify } from '../src/sources/generation';
import { loadPosition, Position, PositionKeeper } from '../src/sources/position';
import { memoryLogger, tempDir } from './helpers/monitor';

function setup() {
  const dir = tempDir('klm-pos-');
  const lease = join(dir, 'kea-leases4.csv');
  writeFileSync(lease, 'address,hwaddr\n10.0.0.1,02:00:00:00:00:01\n');
  const fd = openSync(lease, 'r');
  const file = identify(fd);
  closeSync(fd);
  let offset = 0;
  let asked = 0;
  const state = join(dir, 'state', '.memfile-position.json');
  const current = (): Position => (asked++, { version: 2, offset, file });
  const keeper = new PositionKeeper(state, current, memoryLogger().logger);
  const saved = () => (existsSync(state) ? (JSON.parse(readFileSync(state, 'utf8')) as Position).offset : null);
  // Every save attempt starts by asking for the current position.
  return { keeper, state, saved, advance: (to: number) => (offset = to), attempts: () => asked };
}

// Lets the keeper's async file writes finish (real I/O; only the clock is mocked).
const io = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

test('schedule: saves at once, then at most once a second with the latest offset', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const { keeper, saved, advance, attempts } = setup();
  advance(10);
  keeper.schedule();
  await io();
  assert.equal(attempts(), 1, 'the first schedule saves at once');
  await keeper.save(false); // waits for that save; unchanged, so it writes nothing more
  assert.equal(saved(), 10);
  const before = attempts();
  advance(20);
  keeper.schedule();
  advance(30);
  keeper.schedule(); // within the second: one timer, not two
  await io();
  assert.equal(attempts(), before, 'throttled: no save within the second');
  t.mock.timers.tick(999);
  await io();
  assert.equal(attempts(), before);
  t.mock.timers.tick(1);
  await io();
  assert.equal(attempts(), before + 1, 'one save when the second is up');
  await keeper.save(false);
  assert.equal(saved(), 30, 'the timer saved the newest offset');
  t.mock.timers.tick(10_000);
  await io();
  assert.equal(attempts(), before + 2, 'and only one timer was armed');
});

test('an unchanged position is not rewritten; a forced save is; close() saves and leaves no timer', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 5_000_000 });
  const { keeper, state, saved, advance } = setup();
  advance(7);
  await keeper.save(false);
  rmSync(state);
  await keeper.save(false);
  assert.equal(saved(), null, 'same offset: no write');
  await keeper.save(true);
  assert.equal(saved(), 7, 'forced');
  advance(8);
  keeper.schedule(); // saved within the second: arms the timer
  advance(9);
  await keeper.close();
  assert.equal(saved(), 9);
  t.mock.timers.tick(5000);
  await io();
  assert.equal(saved(), 9);
  const loaded = await loadPosition(state);
  assert.equal(loaded?.version, 2);
  assert.equal(loaded?.offset, 9);
});

test('loadPosition: missing, damaged or old-format state means no position (a replay)', async () => {
  const dir = tempDir('klm-pos-');
  const path = join(dir, 'p.json');
  assert.equal(await loadPosition(path), null);
  writeFileSync(path, '{"version":2,"offset":');
  assert.equal(await loadPosition(path), null);
  writeFileSync(path, JSON.stringify({ version: 1, dev: 1, ino: 2, offset: 3 }));
  assert.equal(await loadPosition(path), null);
});
