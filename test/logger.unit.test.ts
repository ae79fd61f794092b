import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import winston from 'winston';
import { lineFormat } from '../src/logger';

const LEVEL = Symbol.for('level');
const MESSAGE = Symbol.for('message');

const LOGGER = join(__dirname, '..', 'src', 'logger.ts');

/** Runs the real logger (createLogger, its transport on stderr) in a child and returns what it wrote. */
function logWith(format: 'text' | 'json', level: string, calls: string): { stdout: string; stderr: string } {
  const code = `const { createLogger, flushLogger } = require(${JSON.stringify(LOGGER)});
    const log = createLogger(${JSON.stringify(level)}, ${JSON.stringify(format)});
    ${calls}
    flushLogger(log);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return { stdout: r.stdout, stderr: r.stderr };
}

const HOSTILE = 'pwn\n2026-01-01T00:00:00.000Z error [writer] Static reservation created mac=00:00:00:00:00:01\u001b[2J';

test('text format: timestamp, level, [module], message, then key=value fields; nothing on stdout', () => {
  const { stdout, stderr } = logWith(
    'text',
    'info',
    `log.child({ module: 'writer' }).info('Static reservation created', { mac: '0c:c4:7a:00:00:01', ip: '10.0.0.5', subnet_id: 3, hostname: 'bmc-rack1-u01', host_id: null });
    log.debug('not at info');`,
  );
  assert.equal(stdout, '', 'logs never go to stdout (--json results do)');
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1);
  assert.match(
    lines[0],
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info \[writer\] Static reservation created mac=0c:c4:7a:00:00:01 ip=10\.0\.0\.5 subnet_id=3 hostname=bmc-rack1-u01 host_id=null$/,
  );
});

test('a hostname cannot forge a log line or a terminal escape: one line, the value JSON-quoted', () => {
  for (const format of ['text', 'json'] as const) {
    const { stderr } = logWith(
      format,
      'info',
      `log.info('Static reservation created', { mac: '0c:c4:7a:00:00:01', hostname: ${JSON.stringify(HOSTILE)} });`,
    );
    const lines = stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `${format}: exactly one line: ${stderr}`);
    assert.ok(!stderr.includes('\u001b'), `${format}: no raw escape character reaches the terminal`);
    if (format === 'text') {
      assert.ok(lines[0].endsWith(` hostname=${JSON.stringify(HOSTILE)}`), lines[0]);
      assert.match(
        lines[0],
        /^\S+ info Static reservation created mac=0c:c4:7a:00:00:01 hostname="/,
        'the forged text stays inside the quoted value',
      );
    } else {
      assert.equal((JSON.parse(lines[0]) as { hostname: string }).hostname, HOSTILE);
    }
  }
});

test('text format quotes anything that is not a plain token: spaces, quotes, =, empty, objects', () => {
  const { stderr } = logWith(
    'text',
    'info',
    `log.warn('x', { a: 'two words', b: 'k=v', c: '', d: { n: 1 }, e: 'say "hi"', f: 'a'.repeat(201) });`,
  );
  assert.ok(stderr.includes(` a="two words" b="k=v" c="" d={"n":1} e="say \\"hi\\"" f="${'a'.repeat(201)}"`), stderr);
});

// What stays byte-exact: the text line above (with the timestamp) and winston's JSON line.
const RESERVATION = `{ mac: '0c:c4:7a:00:00:01', ip: '10.0.0.5', hostname: 'bmc-rack1-u01', subnet_id: 3, host_id: 17 }`;

test('byte-exact lines in both formats', () => {
  const text = logWith('text', 'info', `log.child({ module: 'writer' }).info('Static reservation created', ${RESERVATION});`).stderr;
  const ts = text.slice(0, 24);
  assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(
    text,
    `${ts} info [writer] Static reservation created mac=0c:c4:7a:00:00:01 ip=10.0.0.5 hostname=bmc-rack1-u01 subnet_id=3 host_id=17\n`,
  );
  const json = logWith('json', 'info', `log.child({ module: 'writer' }).info('Static reservation created', ${RESERVATION});`).stderr;
  const jts = (JSON.parse(json) as { timestamp: string }).timestamp;
  assert.equal(
    json,
    `{"host_id":17,"hostname":"bmc-rack1-u01","ip":"10.0.0.5","level":"info","mac":"0c:c4:7a:00:00:01","message":"Static reservation created","module":"writer","subnet_id":3,"timestamp":"${jts}"}\n`,
  );
});

test('json: the same bytes as winston.format.json() for any fields (flat or not)', () => {
  const value = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.bigInt(),
    fc.object({ maxDepth: 1 }),
  );
  const key = fc.string().filter((k) => !['level', 'message', 'timestamp', '__proto__'].includes(k));
  const ours = lineFormat({ json: true });
  const reference = winston.format.json();
  fc.assert(
    fc.property(fc.dictionary(key, value, { maxKeys: 8 }), fc.string(), (fields, message) => {
      const info = { ...fields, level: 'info', message, [LEVEL]: 'info' };
      const out = (ours.transform({ ...info }, ours.options) as Record<symbol, string>)[MESSAGE];
      const timestamp = (JSON.parse(out) as { timestamp: string }).timestamp;
      const ref = (reference.transform({ ...info, timestamp }, reference.options) as Record<symbol, string>)[MESSAGE];
      assert.equal(out, ref);
    }),
    { numRuns: 2000 },
  );
});

test('text: any string value stays on its line, with no control character', () => {
  const ours = lineFormat({ json: false });
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (hostname) => {
      const line = (ours.transform({ level: 'info', message: 'm', hostname, [LEVEL]: 'info' }, ours.options) as Record<symbol, string>)[
        MESSAGE
      ];
      assert.ok(!/[\u0000-\u001f]/.test(line), JSON.stringify(line));
      assert.ok(line.endsWith(` hostname=${/^[\w.:/@+-]{1,200}$/.test(hostname) ? hostname : JSON.stringify(hostname)}`));
    }),
    { numRuns: 2000 },
  );
});

/** Runs `calls` with the real logger in a child whose stderr is a file; returns the exit status and the file. */
function logToFile(format: 'text' | 'json', calls: string): { status: number | null; lines: string[]; stdout: string } {
  const dir = mkdtempSync(join(tmpdir(), 'klm-logger-'));
  try {
    const file = join(dir, 'stderr');
    const fd = openSync(file, 'w');
    const code = `const { createLogger, flushLogger } = require(${JSON.stringify(LOGGER)});
      const log = createLogger('info', ${JSON.stringify(format)});
      ${calls}`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
      stdio: ['ignore', 'pipe', fd],
      encoding: 'utf8',
      timeout: 60_000,
    });
    closeSync(fd);
    return { status: r.status, lines: readFileSync(file, 'utf8').split('\n'), stdout: r.stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Checks lines[from..] are `n=0` .. `n=count-1` in order (one warn every 1000, debug ones skipped). */
function assertSequence(lines: string[], count: number, format: 'text' | 'json'): void {
  const logged = (l: string): boolean => (format === 'json' ? l.startsWith('{"') : /^\d{4}-\S+ (info|warn) seq /.test(l));
  const seq = lines.filter(logged).map((l) => (format === 'json' ? (JSON.parse(l) as { n: number }).n : Number(/ n=(\d+)/.exec(l)?.[1])));
  assert.equal(seq.length, count, `all ${count} lines present`);
  for (let i = 0; i < count; i++) if (seq[i] !== i) assert.fail(`line ${i} out of order or lost: got ${seq[i]}`);
}

const BURST = `for (let n = 0; n < 100000; n++) {
    if (n % 1000 === 999) log.warn('seq', { n }); else log.info('seq', { n, hostname: 'bmc-rack1-u01', mac: '0c:c4:7a:00:00:01' });
    if (n % 7 === 0) log.debug('seq off', { n: -1 });
  }`;

test('a burst of 100,000 lines: all in the file, in order, after flushLogger', () => {
  for (const format of ['text', 'json'] as const) {
    const r = logToFile(format, `${BURST}\nflushLogger(log).then(() => console.log('flushed'));`);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, 'flushed\n');
    assertSequence(r.lines, 100_000, format);
  }
});

test('nothing lost when the process exits without flushLogger: process.exit(), an uncaught exception', () => {
  const exit = logToFile('text', `${BURST}\nsetImmediate(() => { log.info('seq', { n: 100000 }); process.exit(3); });`);
  assert.equal(exit.status, 3);
  assertSequence(exit.lines, 100_001, 'text');
  const crash = logToFile(
    'text',
    `log.info('seq', { n: 0 });\nlog.info('seq', { n: 1 });\nsetImmediate(() => { log.info('seq', { n: 2 }); throw new Error('boom'); });`,
  );
  assert.equal(crash.status, 1);
  assertSequence(crash.lines, 3, 'text');
  assert.ok(
    crash.lines.indexOf(crash.lines.find((l) => l.includes('n=2'))!) < crash.lines.findIndex((l) => l.includes('Error: boom')),
    'the last line comes before the crash report',
  );
});

test('a stderr pipe that is full (non-blocking, reader slow): every line waits its turn, none lost', async () => {
  // Touching process.stderr makes a pipe fd non-blocking (libuv), so writes there can fail with EAGAIN.
  const code = `process.stderr; const { createLogger, flushLogger } = require(${JSON.stringify(LOGGER)});
    const log = createLogger('info', 'text');
    ${BURST}
    flushLogger(log);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  const chunks: Buffer[] = [];
  child.stderr.pause();
  setTimeout(() => child.stderr.on('data', (d: Buffer) => chunks.push(d)).resume(), 1500);
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(status, 0, Buffer.concat(chunks).toString().slice(-2000));
  assertSequence(Buffer.concat(chunks).toString().split('\n'), 100_000, 'text');
});

test('levels: off ones are dropped before formatting, a level raised at run time applies, children included', () => {
  const { stdout, stderr } = logWith(
    'text',
    'info',
    `const c = log.child({ module: 'w' });
    c.debug('d1'); log.debug('d2'); c.info('i1');
    log.level = 'debug';
    c.debug('d3'); log.debug('d4');
    log.level = 'warn';
    c.info('i2'); c.warn('w1'); log.error('e1');
    let rendered = 0;
    const costly = { toJSON: () => ++rendered };
    log.info('off', { costly }); c.debug('off', { costly }); log.warn('on', { costly });
    console.log(rendered);`,
  );
  assert.equal(stdout, '1\n', 'only the warn line was rendered');
  const messages = stderr
    .trimEnd()
    .split('\n')
    .map((l) => l.replace(/^\S+ /, ''));
  assert.deepEqual(messages, ['info [w] i1', 'debug [w] d3', 'debug d4', 'warn [w] w1', 'error e1', 'warn on costly=1']);
});
