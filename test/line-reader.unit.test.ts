import assert from 'node:assert/strict';
import { appendFileSync, closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { LineReader, MAX_LINE_BYTES } from '../src/sources/line-reader';
import { tempDir } from './helpers/monitor';

function file(content: string | Buffer): { path: string; reader: (offset?: number) => LineReader; close: () => void } {
  const path = join(tempDir('klm-lines-'), 'f.csv');
  writeFileSync(path, content);
  const fds: number[] = [];
  return {
    path,
    reader: (offset = 0) => {
      const fd = openSync(path, 'r');
      fds.push(fd);
      return new LineReader(fd, offset);
    },
    close: () => fds.forEach((fd) => closeSync(fd)),
  };
}

test('CRLF and LF lines; each line knows the offset just past its newline', async () => {
  const f = file('a,b\r\nc\n\r\nlast\n');
  try {
    const r = f.reader();
    const lines = await r.read();
    assert.deepEqual(
      lines.map((l) => [l.text, l.end]),
      [
        ['a,b', 5],
        ['c', 7],
        ['', 9],
        ['last', 14],
      ],
    );
    assert.equal(r.consumed, 14);
    assert.deepEqual(await r.read(), [], 'end of file');
  } finally {
    f.close();
  }
});

test('a partial last line is held back until its newline arrives (Kea mid-write)', async () => {
  const f = file('one\ntw');
  try {
    const r = f.reader();
    assert.deepEqual(
      (await r.read()).map((l) => l.text),
      ['one'],
    );
    assert.equal(r.consumed, 4);
    assert.equal(r.pendingBytes, 2);
    assert.deepEqual(await r.read(), []);
    appendFileSync(f.path, 'o\r\nthree');
    const next = await r.read();
    assert.deepEqual(
      next.map((l) => [l.text, l.end]),
      [['two', 9]],
    );
    assert.equal(r.pendingBytes, 5);
  } finally {
    f.close();
  }
});

test('lines over 64 KiB are reported as oversized (start only) and skipped whole; the next line is intact', async () => {
  const exact = 'e'.repeat(MAX_LINE_BYTES);
  const huge = 'x'.repeat(MAX_LINE_BYTES + 10);
  const f = file(`${exact}\n${huge}\nafter\n`);
  try {
    const lines = await f.reader().read();
    assert.equal(lines.length, 3);
    assert.equal(lines[0].text, exact, 'exactly 64 KiB is still a line');
    assert.ok(!lines[0].oversized);
    assert.equal(lines[1].oversized, true);
    assert.equal(lines[1].text, 'x'.repeat(200));
    assert.deepEqual([lines[2].text, lines[2].end], ['after', exact.length + huge.length + 8]);
  } finally {
    f.close();
  }
});

test('an oversized line still being written is reported at its start and skipped once it ends', async () => {
  const f = file(`ok\n${'y'.repeat(MAX_LINE_BYTES * 2)}`);
  try {
    const r = f.reader();
    const first = await r.read();
    assert.deepEqual(
      first.map((l) => [l.text.slice(0, 2), l.end, Boolean(l.oversized)]),
      [
        ['ok', 3, false],
        ['yy', 3, true],
      ],
    );
    assert.equal(r.pendingBytes, 0, 'nothing of it is kept in memory');
    appendFileSync(f.path, `${'y'.repeat(1000)}\nnext\n`);
    assert.deepEqual(
      (await r.read()).map((l) => l.text),
      ['next'],
    );
  } finally {
    f.close();
  }
});

test('a line across the 1 MiB read chunk is whole; invalid UTF-8 becomes U+FFFD; a start offset is honoured', async () => {
  const filler = ('z'.repeat(99) + '\n').repeat(10_485); // 1,048,500 bytes
  const f = file(
    Buffer.concat([Buffer.from(filler), Buffer.from('across-the-chunk-' + 'w'.repeat(200) + '\n'), Buffer.from([0x61, 0xff, 0x62, 0x0a])]),
  );
  try {
    const all: string[] = [];
    const r = f.reader();
    for (let lines = await r.read(); lines.length; lines = await r.read()) all.push(...lines.map((l) => l.text));
    assert.equal(all.length, 10_487);
    assert.equal(all[10_485], 'across-the-chunk-' + 'w'.repeat(200));
    assert.equal(all[10_486], 'a\ufffdb');
    const fromOffset = await f.reader(filler.length).read();
    assert.deepEqual(
      fromOffset.map((l) => l.text.slice(0, 6)),
      ['across', 'a\ufffdb'],
    );
  } finally {
    f.close();
  }
});
