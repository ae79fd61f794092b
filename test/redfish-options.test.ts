// The Redfish flags: defaults, and every combination that cannot work refused with exit 2 through the binary.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { UsageError } from '../src/errors';
import { buildOptions } from '../src/options';
import { tempDir } from './helpers/monitor';
import { selfSigned } from './helpers/tls-device';

const BIN = join(__dirname, '..', 'dist', 'kea-lease-monitor');

describe('Redfish options', () => {
  test('defaults: off, 5 s per attempt, retried for 10 minutes, 8 at once, 20 per second, no CA', () => {
    assert.deepEqual(buildOptions({}, {}).redfish, {
      probe: false,
      require: false,
      timeoutMs: 5000,
      retryForMs: 600_000,
      caFile: null,
      concurrency: 8,
      rate: 20,
    });
    const o = buildOptions(
      { redfishProbe: true, requireRedfish: true, redfishTimeout: '1.5', redfishRetryFor: '2m' },
      { KEA_LM_REDFISH_RATE: '5' },
    );
    assert.deepEqual(
      [o.redfish.probe, o.redfish.require, o.redfish.timeoutMs, o.redfish.retryForMs, o.redfish.rate],
      [true, true, 1500, 120_000, 5],
    );
  });

  test('a CA file must hold a PEM certificate', () => {
    const dir = tempDir('klm-rf-opt-');
    const notPem = join(dir, 'ca.txt');
    writeFileSync(notPem, 'hello');
    assert.throws(() => buildOptions({ redfishProbe: true, redfishCa: notPem }, {}), /holds no PEM certificate/);
    assert.throws(() => buildOptions({ redfishProbe: true, redfishCa: join(dir, 'missing.pem') }, {}), /cannot read .*ENOENT/);
    const good = selfSigned('127.0.0.1').certFile;
    assert.equal(buildOptions({ redfishProbe: true, redfishCa: good }, {}).redfish.caFile, good);
  });

  test('combinations that cannot work are usage errors', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ requireRedfish: true }, /--require-redfish needs --redfish-probe/],
      [{ redfishCa: '/etc/hostname' }, /--redfish-ca works only with --redfish-probe/],
      [{ redfishProbe: true, dryRun: true }, /--redfish-probe does not work with --dry-run/],
    ];
    for (const [argv, msg] of cases)
      assert.throws(
        () => buildOptions(argv, {}),
        (e: Error) => e instanceof UsageError && msg.test(e.message),
      );
  });

  test('the binary exits 2 with one line naming the flag', { skip: !existsSync(BIN) && 'make build first' }, () => {
    for (const [args, msg] of [
      [['run', '--require-redfish'], /--require-redfish needs --redfish-probe/],
      [['run', '--redfish-probe', '--dry-run'], /--redfish-probe does not work with --dry-run/],
      [['run', '--redfish-probe', '--redfish-timeout', '0'], /--redfish-timeout: "?0"? is below the minimum 0.1/],
      [['run', '--redfish-probe', '--redfish-retry-for', 'soon'], /is not a duration/],
    ] as const) {
      const r = spawnSync(BIN, [...args], { env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
    }
  });
});
