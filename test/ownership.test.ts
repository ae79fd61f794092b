import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOwned, makeMark, OWNER_KEY, readMark, withMark, withoutMark } from '../src/ownership';

describe('ownership mark in user_context', () => {
  const mark = makeMark('database', new Date('2026-01-02T03:04:05Z'));

  test('a mark is added beside the keys already there, and read back', () => {
    const text = withMark('{"owner":"ops","n":1}', mark);
    assert.deepEqual(JSON.parse(text), { owner: 'ops', n: 1, [OWNER_KEY]: { created: '2026-01-02T03:04:05.000Z', source: 'database' } });
    assert.deepEqual(readMark(text), mark);
    assert.equal(isOwned(text), true);
  });

  test('rows without a well-formed mark are not ours', () => {
    for (const t of [
      null,
      '',
      '{}',
      '{"owner":"ops"}',
      'not json',
      '[1]',
      `{"${OWNER_KEY}":true}`,
      `{"${OWNER_KEY}":{"created":"yesterday","source":"database"}}`,
      `{"${OWNER_KEY}":{"created":"2026-01-01T00:00:00Z","source":"x"}}`,
    ]) {
      assert.equal(isOwned(t), false, String(t));
    }
  });

  test('text that is not a JSON object is never rewritten', () => {
    assert.throws(() => withMark('operator notes', mark), /not a JSON object/);
    assert.equal(JSON.parse(withMark(null, mark))[OWNER_KEY].source, 'database');
  });

  test('removing the mark keeps the other keys', () => {
    assert.equal(withoutMark(withMark('{"owner":"ops"}', mark)), '{"owner":"ops"}');
    assert.equal(withoutMark(withMark(null, mark)), null);
  });
});
