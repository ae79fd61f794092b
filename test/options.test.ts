import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { UsageError } from '../src/errors';
import { buildOptions, describeOptions } from '../src/options';
import { tempDir } from './helpers/monitor';

describe('options: defaults, then environment, then argv', () => {
  test('defaults match the documented contract', () => {
    const o = buildOptions({}, {});
    assert.equal(o.useDatabaseEvents, false);
    assert.deepEqual(o.db, {
      host: 'localhost',
      port: 5432,
      database: 'kea',
      user: 'kea',
      password: undefined,
      timeouts: { statementMs: 30_000, lockMs: 5_000, idleInTransactionMs: 60_000, queryMs: 40_000, connectMs: 10_000 },
    });
    assert.equal(o.reconcileInterval, 300);
    assert.deepEqual(o.subnetIds, []);
    assert.equal(o.outputDir, '/var/lib/kea/discovery');
    assert.equal(o.leaseFile, '/var/lib/kea/kea-leases4.csv');
    assert.equal(o.stateFile, '/var/lib/kea/discovery/.memfile-position.json');
    assert.equal(o.pollInterval, 5);
    assert.equal(o.logLevel, 'info');
    assert.equal(o.logFormat, 'text');
  });

  test('environment overrides defaults and argv overrides environment', () => {
    const env = {
      KEA_LM_DB_HOST: 'db.env',
      KEA_LM_DB_PORT: '6432',
      KEA_LM_SUBNET_ID: '3,4',
      KEA_LM_USE_DATABASE_EVENTS: 'true',
      KEA_LM_LOG_FORMAT: 'JSON',
    };
    const fromEnv = buildOptions({}, env);
    assert.deepEqual(
      [fromEnv.db.host, fromEnv.db.port, fromEnv.subnetIds, fromEnv.useDatabaseEvents, fromEnv.logFormat],
      ['db.env', 6432, [3, 4], true, 'json'],
    );
    const fromArgv = buildOptions({ dbHost: 'db.argv', subnetId: ['1', '2,5', '1'], useDatabaseEvents: false }, env);
    assert.deepEqual(
      [fromArgv.db.host, fromArgv.db.port, fromArgv.subnetIds, fromArgv.useDatabaseEvents],
      ['db.argv', 6432, [1, 2, 5], false],
    );
  });

  test('bad values fail with one line naming the flag or variable', () => {
    const cases: [Record<string, unknown>, Record<string, string>, RegExp][] = [
      [{ dbPort: 'abc' }, {}, /^--db-port: "abc" is not a whole number from 1 to 65535$/],
      [{ dbPort: '70000' }, {}, /--db-port: "70000" is above the maximum 65535/],
      [{}, { KEA_LM_DB_PORT: '0' }, /KEA_LM_DB_PORT: "0" is below the minimum 1/],
      [{ subnetId: ['1', 'x'] }, {}, /^--subnet-id: "x" is not a subnet id \(a whole number from 1 to 4294967294\)$/],
      [{ subnetId: ['0'] }, {}, /--subnet-id: .* below the minimum 1/],
      [{ logLevel: 'verbose' }, {}, /--log-level: "verbose" is not one of error, warn, info, debug/],
      [{}, { KEA_LM_USE_DATABASE_EVENTS: 'maybe' }, /KEA_LM_USE_DATABASE_EVENTS: "maybe" is not a boolean/],
      [{ pollInterval: '-1' }, {}, /--poll-interval: "-1" is not a number/],
      [{ outputDir: '' }, {}, /--output-dir: "" must not be empty/],
      [{ batchSize: '500', queueSize: '100' }, {}, /--queue-size \(100\) must be at least --batch-size \(500\)/],
      [{ batchSize: '500', recordBacklog: '100' }, {}, /--record-backlog \(100\) must be at least --batch-size \(500\)/],
    ];
    for (const [argv, env, why] of cases)
      assert.throws(
        () => buildOptions(argv, env),
        (e: unknown) => e instanceof UsageError && why.test(e.message),
        String(why),
      );
  });

  test('a libpq-style host list: one port for all, or one per host', () => {
    assert.deepEqual([buildOptions({ dbHost: 'a, b' }, {}).db.host, buildOptions({ dbHost: 'a,b' }, {}).db.ports], ['a,b', undefined]);
    const two = buildOptions({ dbHost: 'a,/run/pg', dbPort: '5432,6432' }, {}).db;
    assert.deepEqual([two.host, two.port, two.ports], ['a,/run/pg', 5432, [5432, 6432]]);
    assert.throws(() => buildOptions({ dbHost: 'a,b,c', dbPort: '1,2' }, {}), /--db-port: 2 ports for 3 hosts/);
    assert.throws(() => buildOptions({ dbHost: 'a,,b' }, {}), /--db-host: "a,,b" has an empty entry/);
    assert.throws(() => buildOptions({ dbPort: '5432,' }, {}), /--db-port: "5432," has an empty entry/);
  });

  test('password: file, then flag (with a warning), then KEA_DB_PASSWORD, then the systemd credential', () => {
    const dir = tempDir('klm-secret-');
    writeFileSync(join(dir, 'file'), 'from-file\n');
    writeFileSync(join(dir, 'db-password'), 'from-credential\n');
    let warned = 0;
    const hooks = { onInsecureFlag: () => void warned++ };
    const env = { KEA_DB_PASSWORD: 'from-env', CREDENTIALS_DIRECTORY: dir };
    assert.equal(buildOptions({ dbPasswordFile: join(dir, 'file'), dbPassword: 'x' }, env, hooks).db.password, 'from-file');
    assert.equal(buildOptions({ dbPassword: 'from-flag' }, env, hooks).db.password, 'from-flag');
    assert.equal(warned, 1);
    assert.equal(buildOptions({}, env).db.password, 'from-env');
    assert.equal(buildOptions({}, { CREDENTIALS_DIRECTORY: dir }).db.password, 'from-credential');
    assert.throws(() => buildOptions({ dbPasswordFile: join(dir, 'missing') }, {}), /--db-password-file: cannot read .*ENOENT/);
  });

  test('the password never appears in the loggable description', () => {
    const o = buildOptions({}, { KEA_DB_PASSWORD: 's3cret-value' });
    const text = JSON.stringify(describeOptions(o));
    assert.ok(!text.includes('s3cret-value'));
    assert.match(text, /"password":"set"/);
  });
});
