// Property-based tests (fast-check) over every parser of untrusted input. Prints how many inputs ran.
import assert from 'node:assert/strict';
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { DiscoveryWriter } from '../src/discovery';
import { UsageError } from '../src/errors';
import { classifyLease, formatIPv4, formatMac, InvalidLeaseError, LeaseFields, macFileStem, unleasableReason } from '../src/lease';
import { buildOptions, envName, OPTION_SPECS, OptionKey, OptionSpec } from '../src/options';
import { Line, LineReader, MAX_LINE_BYTES } from '../src/sources/line-reader';
import { parseHeader, parseRow } from '../src/sources/memfile-row';
import { parseNotifyPayload } from '../src/sources/notify-payload';
import { CSV_HEADER } from './helpers/leases';

// Fixed seed by default so a failure reproduces; FUZZ_SEED=random (or a number) explores further.
const seed = process.env.FUZZ_SEED === 'random' ? Date.now() : Number(process.env.FUZZ_SEED ?? 20261127);
const scale = Number(process.env.FUZZ_SCALE ?? 1);
let inputs = 0;

function check<T>(arb: fc.Arbitrary<T>, runs: number, prop: (v: T) => void): void {
  const numRuns = Math.max(1, Math.round(runs * scale));
  fc.assert(
    fc.property(arb, (v) => {
      inputs++;
      prop(v);
    }),
    { seed, numRuns, endOnFailure: true },
  );
}

async function checkAsync<T>(arb: fc.Arbitrary<T>, runs: number, prop: (v: T) => Promise<void>): Promise<void> {
  const numRuns = Math.max(1, Math.round(runs * scale));
  await fc.assert(
    fc.asyncProperty(arb, async (v) => {
      inputs++;
      await prop(v);
    }),
    { seed, numRuns, endOnFailure: true },
  );
}

after(() => {
  console.log(`fuzz: ${inputs} inputs (seed ${seed})`);
});

/** Only the documented error type may escape; anything else fails the property. */
function acceptsOrRefuses<T>(fn: () => T, allowed: new (...a: never[]) => Error): T | null {
  try {
    return fn();
  } catch (err) {
    if (err instanceof allowed) return null;
    throw err;
  }
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const STEM = /^[0-9a-f]{2}(-[0-9a-f]{2}){0,19}$/;

/** What every lease that gets as far as a reservation must satisfy, whatever the source. */
function assertAcceptedLease(f: LeaseFields): void {
  assert.equal(unleasableReason(f.address), null, `unleasable ${formatIPv4(f.address)} accepted`);
  assert.ok(f.hwaddr.length <= 20);
  const c = classifyLease(f, 'memfile', new Set(), 0);
  if (c.kind !== 'live') return;
  const h = c.lease.hostname;
  if (h !== null) {
    assert.ok(h.isWellFormed(), 'hostname is valid UTF-8 (no lone surrogates)');
    assert.equal(Buffer.from(h, 'utf8').toString('utf8'), h);
    assert.ok(!CONTROL.test(h), `control character in ${JSON.stringify(h)}`);
    assert.ok(Buffer.byteLength(h, 'utf8') <= 255);
    assert.ok(h.length > 0);
  }
  const stem = macFileStem(c.lease.hwaddr);
  assert.match(stem, STEM);
  assert.ok(c.lease.hwaddr.length >= 1 && c.lease.hwaddr.length <= 20);
  // The discovery file name is the MAC and nothing else: the same for any hostname.
  const writer = new DiscoveryWriter('/nonexistent');
  assert.equal(basename(writer.pathFor(c.lease.hwaddr)), `${stem}.json`);
}

// ---- generators -------------------------------------------------------------------------------

const leasable = fc.integer({ min: 1, max: 0xffffffff }).filter((n) => unleasableReason(n) === null);
const anyAddress = fc.oneof(
  leasable,
  fc.constantFrom(0, 0x7f000001, 0xe0000001, 0xf0000001, 0xffffffff),
  fc.integer({ min: 0, max: 0xffffffff }),
);
const hwaddr = fc.uint8Array({ minLength: 1, maxLength: 20 }).map((a) => Buffer.from(a));
const hostileText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 300 }),
  fc.string({
    unit: fc.constantFrom(
      'a',
      ',',
      '&',
      '#',
      'x',
      '2',
      'c',
      ';',
      '\u0000',
      '\u0085',
      '\u2028',
      '\ud800',
      '\udfff',
      '\u{1F600}',
      ' ',
      '.',
      '-',
    ),
    maxLength: 400,
  }),
);
const lease = fc.record({
  address: leasable,
  hwaddr,
  subnetId: fc.integer({ min: 1, max: 0xffffffff }),
  hostname: fc.option(
    hostileText.filter((s) => !/[\r\n]/.test(s)),
    { nil: null },
  ),
  validLifetime: fc.integer({ min: 0, max: 0xffffffff }),
  expire: fc.integer({ min: 0, max: 2 ** 40 }),
  state: fc.integer({ min: 0, max: 4 }),
});

type GenLease = typeof lease extends fc.Arbitrary<infer T> ? T : never;

/** A row as Kea writes it: commas inside the hostname escaped as &#x2c. */
function keaRow(l: GenLease, upper = false): string {
  const mac = formatMac(l.hwaddr);
  return [
    formatIPv4(l.address),
    upper ? mac.toUpperCase() : mac,
    '',
    l.validLifetime,
    l.expire,
    l.subnetId,
    0,
    0,
    (l.hostname ?? '').replace(/,/g, '&#x2c'),
    l.state,
    '',
  ].join(',');
}

// ---- memfile rows -----------------------------------------------------------------------------

describe('fuzz: memfile row parser', () => {
  const header = parseHeader(CSV_HEADER);

  test('valid rows from random leases round-trip to the same MAC, address and subnet', () => {
    check(fc.tuple(lease, fc.boolean()), 20_000, ([l, upper]) => {
      const f = parseRow(keaRow(l, upper), header);
      assert.equal(f.address, l.address);
      assert.ok(f.hwaddr.equals(l.hwaddr));
      assert.equal(f.subnetId, l.subnetId);
      if (!l.hostname?.includes('&#x')) assert.equal(f.hostname, l.hostname === '' ? null : l.hostname);
      assertAcceptedLease(f);
    });
  });

  test('random and mutated rows: InvalidLeaseError or a lease that passes every check', () => {
    const cell = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.constantFrom(
        '0',
        '1',
        '255',
        '10.0.0.1',
        '0.0.0.0',
        '255.255.255.255',
        '127.0.0.1',
        '224.1.1.1',
        'aa:bb:cc:dd:ee:ff',
        'a:b',
        '::',
        '&#x2c',
        '99999999999999999',
        '-1',
        '1e3',
        ' 1',
      ),
    );
    const mutated = fc.tuple(lease, fc.integer({ min: 0, max: 10 }), cell).map(([l, i, v]) => {
      const cells = keaRow(l).split(',');
      cells[i] = v;
      return cells.join(',');
    });
    const random = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 400 }),
      fc.array(cell, { minLength: 11, maxLength: 11 }).map((c) => c.join(',')),
      mutated,
    );
    check(random, 30_000, (row) => {
      const f = acceptsOrRefuses(() => parseRow(row, header), InvalidLeaseError);
      if (f) assertAcceptedLease(f);
    });
  });

  test('random headers: InvalidLeaseError or a header naming every column', () => {
    const names = fc.constantFrom(
      'address',
      'hwaddr',
      'client_id',
      'valid_lifetime',
      'expire',
      'subnet_id',
      'fqdn_fwd',
      'fqdn_rev',
      'hostname',
      'state',
      'user_context',
      'pool_id',
      '',
      'x',
    );
    check(
      fc.oneof(
        fc.array(names, { maxLength: 14 }).map((a) => a.join(',')),
        fc.string(),
      ),
      5_000,
      (text) => {
        const h = acceptsOrRefuses(() => parseHeader(text), InvalidLeaseError);
        if (h) for (const i of Object.values(h.index)) assert.ok(i >= 0 && i < h.columns.length);
      },
    );
  });
});

// ---- NOTIFY payloads --------------------------------------------------------------------------

describe('fuzz: NOTIFY payload parser', () => {
  const field = fc.oneof(
    fc.constant(null),
    fc.integer(),
    fc.double(),
    fc.string({ maxLength: 50 }),
    fc.boolean(),
    fc.constant(undefined),
    fc.array(fc.integer(), { maxLength: 3 }),
    fc.object({ maxDepth: 1 }),
    fc.constant(2 ** 53),
    fc.constant(-0),
  );
  const payload = fc.record(
    {
      v: fc.oneof(fc.constant(1), field),
      op: fc.oneof(fc.constantFrom('insert', 'update', 'delete'), field),
      address: fc.oneof(anyAddress, field),
      hwaddr: fc.oneof(
        hwaddr.map((b) => b.toString('hex')),
        hwaddr.map((b) => formatMac(b)),
        field,
      ),
      subnet_id: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), field),
      state: fc.oneof(fc.integer({ min: 0, max: 4 }), field),
      valid_lifetime: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), field),
      expire: fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }), field),
      hostname: fc.oneof(hostileText, field),
    },
    { requiredKeys: [] },
  );

  test('valid payloads from random leases round-trip to the same MAC, address and subnet', () => {
    check(lease, 15_000, (l) => {
      const f = parseNotifyPayload(
        JSON.stringify({
          v: 1,
          op: 'insert',
          address: l.address,
          hwaddr: l.hwaddr.toString('hex'),
          subnet_id: l.subnetId,
          state: l.state,
          valid_lifetime: l.validLifetime,
          expire: l.expire,
          hostname: l.hostname,
        }),
      );
      assert.equal(f.address, l.address);
      assert.ok(f.hwaddr.equals(l.hwaddr));
      assert.equal(f.subnetId, l.subnetId);
      assertAcceptedLease(f);
    });
  });

  test('forged payloads: InvalidLeaseError or a lease that passes every check', () => {
    const text = fc.oneof(
      payload.map((p) => JSON.stringify(p)),
      fc.json(),
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc
        .tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.integer({ min: 7990, max: 8100 }))
        .map(([t, n]) => t.repeat(Math.ceil(n / t.length)).slice(0, n)),
    );
    check(text, 20_000, (t) => {
      const f = acceptsOrRefuses(() => parseNotifyPayload(t), InvalidLeaseError);
      if (f) assertAcceptedLease(f);
    });
  });
});

// ---- line reader ------------------------------------------------------------------------------

describe('fuzz: line reader', () => {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'klm-fuzz-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const fd = openSync(join(dir, 'lines'), 'w+');
  after(() => closeSync(fd));

  /** What the reader must return for `content`: complete lines only, CR stripped, long ones flagged. */
  function expected(content: Buffer): { text?: string; end: number; oversized: boolean }[] {
    const out: { text?: string; end: number; oversized: boolean }[] = [];
    let start = 0;
    for (let nl = content.indexOf(10); nl >= 0; nl = content.indexOf(10, start)) {
      if (nl - start > MAX_LINE_BYTES) out.push({ end: nl + 1, oversized: true });
      else out.push({ text: new TextDecoder().decode(content.subarray(start, nl)).replace(/\r$/, ''), end: nl + 1, oversized: false });
      start = nl + 1;
    }
    if (content.length - start > MAX_LINE_BYTES) out.push({ end: -1, oversized: true });
    return out;
  }

  /** Writes `content` in the given pieces, reading (with random budgets) after each: as a follower sees Kea's writes. */
  async function readInPieces(content: Buffer, cuts: number[], budgets: number[]): Promise<Line[]> {
    ftruncateSync(fd, 0);
    const reader = new LineReader(fd, 0);
    const got: Line[] = [];
    const points = [...new Set(cuts.map((c) => Math.min(c, content.length)))].sort((a, b) => a - b);
    let written = 0;
    for (const [i, p] of [...points, content.length].entries()) {
      if (p > written) writeSync(fd, content, written, p - written, written);
      written = Math.max(written, p);
      for (;;) {
        const lines = await reader.read(budgets[i % budgets.length]);
        if (lines.length === 0) break;
        got.push(...lines);
      }
    }
    const complete = content.lastIndexOf(10) + 1;
    if (!got.some((l) => l.oversized && l.end <= complete && content.length - complete > MAX_LINE_BYTES)) {
      assert.equal(reader.consumed + reader.pendingBytes, content.length);
    }
    return got;
  }

  function compare(content: Buffer, got: Line[]): void {
    const want = expected(content);
    assert.equal(got.length, want.length, 'one entry per line');
    for (const [i, w] of want.entries()) {
      assert.equal(!!got[i].oversized, w.oversized, `line ${i} oversized`);
      if (!w.oversized) {
        assert.equal(got[i].text, w.text, `line ${i} text`);
        assert.equal(got[i].end, w.end, `line ${i} end`);
      } else if (w.end > 0) {
        // Reported at its end, or (seen before its newline) at its start: never inside another line.
        const start = i === 0 ? 0 : want[i - 1].end;
        assert.ok(got[i].end === w.end || got[i].end === start, `oversized line ${i} end ${got[i].end}`);
      }
    }
  }

  const piece = fc.oneof(
    fc.constantFrom('\n', '\r\n', '\r', ',', 'a', 'é', '\u{1F600}', '\u0000'),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b).toString('latin1')),
  );
  const content = fc.array(piece, { maxLength: 60 }).map((parts) => Buffer.from(parts.join(''), 'utf8'));
  const bytes = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b.map((x) => (x % 7 === 0 ? 10 : x))));

  test('CRLF, partial lines, split characters and random chunking', async () => {
    await checkAsync(
      fc.tuple(
        fc.oneof(content, bytes),
        fc.array(fc.nat({ max: 400 }), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 512 }), { minLength: 1, maxLength: 3 }),
      ),
      6_000,
      async ([c, cuts, budgets]) => {
        compare(c, await readInPieces(c, cuts, budgets));
      },
    );
  });

  test('regression: an oversized line seen before its newline is reported at its start, not mid-line', async () => {
    const row = '10.0.0.1,aa:bb:cc:dd:ee:ff,,3600,1900000000,1,0,0,h,0,\n';
    const c = Buffer.from(row + 'x'.repeat(200_000) + '\n' + row);
    const got = await readInPieces(c, [row.length + 100_000], [4 << 20]);
    assert.deepEqual(
      got.map((l) => [!!l.oversized, l.end]),
      [
        [false, row.length],
        [true, row.length],
        [false, c.length],
      ],
    );
  });

  test('multi-megabyte lines are flagged once and never split into rows', async () => {
    const big = fc
      .tuple(
        fc.integer({ min: MAX_LINE_BYTES - 2, max: 3 * 1024 * 1024 }),
        fc.boolean(),
        fc.array(fc.nat({ max: 3 * 1024 * 1024 }), { maxLength: 4 }),
      )
      .map(([n, newline, cuts]) => {
        const row = Buffer.from('10.0.0.1,aa:bb:cc:dd:ee:ff,,3600,1900000000,1,0,0,h,0,\n');
        const long = Buffer.alloc(n, 0x61);
        // A row-shaped tail inside the long line must not come out as a row.
        row.copy(long, Math.max(0, n - row.length));
        return { content: Buffer.concat([row, long, Buffer.from(newline ? '\n' : ''), row]), cuts };
      });
    await checkAsync(big, 40, async ({ content: c, cuts }) => {
      const got = await readInPieces(c, cuts, [4 << 20]);
      compare(c, got);
      const rows = got.filter((l) => !l.oversized && l.text.startsWith('10.0.0.1,'));
      const longIsLine = c.length - 2 * 55 - 1 <= MAX_LINE_BYTES;
      assert.ok(rows.length <= (longIsLine ? 3 : 2));
    });
  });
});

// ---- options ----------------------------------------------------------------------------------

describe('fuzz: option parsing', () => {
  const keys = (Object.keys(OPTION_SPECS) as OptionKey[]).filter((k) => k !== 'dbPasswordFile');
  const value = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(''),
    fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.integer()), { maxLength: 3 }),
    fc.constantFrom(
      '0',
      '1',
      '65535',
      '65536',
      '0.05',
      '3600',
      'true',
      'off',
      'json',
      'DEBUG',
      '1,2,3',
      ' 7 ',
      '1e3',
      '0x10',
      '\u0000',
      '-1',
      '4294967295',
    ),
  );
  const argv = fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 6 });
  const env = fc.dictionary(
    fc.constantFrom(...keys.map((k) => envName(OPTION_SPECS[k] as OptionSpec)), 'KEA_DB_PASSWORD'),
    value.map(String),
    { maxKeys: 6 },
  );

  test('random argv and environment: UsageError or options within every documented range', () => {
    check(fc.tuple(argv, env), 20_000, ([a, e]) => {
      const o = acceptsOrRefuses(() => buildOptions(a, e), UsageError);
      if (!o) return;
      const within = (n: number, key: OptionKey) => {
        const spec: OptionSpec = OPTION_SPECS[key];
        assert.ok(Number.isFinite(n), `${key} finite`);
        if (spec.min !== undefined) assert.ok(n >= spec.min, `${key} >= min`);
        if (spec.max !== undefined) assert.ok(n <= spec.max, `${key} <= max`);
        if (spec.kind === 'integer') assert.ok(Number.isInteger(n), `${key} integer`);
      };
      within(o.db.port, 'dbPort');
      within(o.metricsPort, 'metricsPort');
      within(o.batchSize, 'batchSize');
      within(o.queueSize, 'queueSize');
      within(o.poolSize, 'poolSize');
      within(o.pollInterval, 'pollInterval');
      within(o.heartbeatInterval, 'heartbeatInterval');
      within(o.reconnectMaxDelay, 'reconnectMaxDelay');
      within(o.shutdownGrace, 'shutdownGrace');
      for (const s of o.subnetIds) within(s, 'subnetId');
      assert.ok(o.queueSize >= o.batchSize);
      for (const s of [o.db.host, o.db.database, o.db.user, o.outputDir, o.leaseFile, o.stateFile, o.metricsHost]) {
        assert.ok(typeof s === 'string' && s.length > 0 && !s.includes('\0'));
      }
      assert.ok(['error', 'warn', 'info', 'debug'].includes(o.logLevel));
      assert.ok(['text', 'json'].includes(o.logFormat));
      assert.equal(typeof o.useDatabaseEvents, 'boolean');
    });
  });
});
