import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const LOGGER = join(__dirname, '..', 'src', 'logger.ts');

/** Runs the real logger (createLogger, its Console transport on stderr) in a child and returns what it wrote. */
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
