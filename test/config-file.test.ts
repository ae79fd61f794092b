import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfigFile, parseConfigText } from '../src/config-file';
import { UsageError } from '../src/errors';
import { buildOptions } from '../src/options';
import { tempDir } from './helpers/monitor';

describe('--config YAML file', () => {
  const yaml = [
    'subnet-id: [1, 2]',
    'allow-mac-prefix:',
    '  - 0c:c4:7a',
    '  - "3c:22:fb"',
    'deny-hostname: ["^guest-", "iphone"]',
    'allow-address: 10.0.200.0/26',
    'max-reservations-per-subnet: 50',
    'output-dir: /srv/discovery',
    'use-database-events: true',
    'dry-run: false',
    'prune-unseen-for: 90d',
    'batch-size: 500',
  ].join('\n');

  test('keys are the long flag names; values scalar or list', () => {
    const o = buildOptions({}, {}, {}, parseConfigText(yaml, 'monitor.yml'));
    assert.deepEqual(o.policy, {
      subnetIds: [1, 2],
      allowMacPrefix: ['0c:c4:7a', '3c:22:fb'],
      denyMacPrefix: [],
      allowHostname: [],
      denyHostname: ['^guest-', 'iphone'],
      allowAddress: ['10.0.200.0/26'],
    });
    assert.equal(o.maxReservationsPerSubnet, 50);
    assert.equal(o.outputDir, '/srv/discovery');
    assert.equal(o.useDatabaseEvents, true);
    assert.equal(o.pruneUnseenFor, 90 * 86400);
    assert.equal(o.batchSize, 500);
    assert.equal(o.configFile, 'monitor.yml');
  });

  test('precedence: defaults < config file < KEA_LM_* < argv', () => {
    const cfg = parseConfigText(yaml, 'monitor.yml');
    assert.equal(buildOptions({}, {}, {}, null).batchSize, 1000);
    assert.equal(buildOptions({}, {}, {}, cfg).batchSize, 500);
    assert.equal(buildOptions({}, { KEA_LM_BATCH_SIZE: '700' }, {}, cfg).batchSize, 700);
    assert.equal(buildOptions({ batchSize: '900' }, { KEA_LM_BATCH_SIZE: '700' }, {}, cfg).batchSize, 900);
    assert.deepEqual(buildOptions({}, { KEA_LM_ALLOW_MAC_PREFIX: 'aa:bb, cc' }, {}, cfg).policy.allowMacPrefix, ['aa:bb', 'cc']);
    assert.deepEqual(
      buildOptions({ allowHostname: ['a,b{1,2}'] }, {}, {}, cfg).policy.allowHostname,
      ['a,b{1,2}'],
      'regexes keep their commas',
    );
  });

  test('an unknown key or a bad value names the key and the file', () => {
    const bad = (text: string, re: RegExp) =>
      assert.throws(
        () => parseConfigText(text, '/etc/klm.yml'),
        (e: Error) => e instanceof UsageError && re.test(e.message),
        text,
      );
    bad('subnet-ids: [1]', /\/etc\/klm\.yml: unknown key "subnet-ids"/);
    bad('config: other.yml', /unknown key "config"/);
    bad('subnet-id: [one]', /\/etc\/klm\.yml: subnet-id: "one" is not a subnet id/);
    bad('allow-mac-prefix: [0c:c4:7a, zz:zz]', /\/etc\/klm\.yml: allow-mac-prefix: "zz:zz" is not a MAC prefix/);
    bad('deny-hostname: "(x"', /\/etc\/klm\.yml: deny-hostname: "\(x" is not a valid regular expression/);
    bad('allow-address: 10.0.0.1/8', /allow-address: "10.0.0.1\/8" has host bits set/);
    bad('max-reservations-per-subnet: -1', /max-reservations-per-subnet: -1 is not a whole number/);
    bad('prune-unseen-for: 3 days', /prune-unseen-for: "3 days" is not a duration/);
    bad('batch-size: [1, 2]', /"batch-size" takes one value, not a list/);
    bad('output-dir: {a: 1}', /"output-dir" must be a scalar or a list of scalars/);
    bad('- subnet-id', /must be a mapping/);
    bad('a: [1', /not valid YAML/);
    bad('batch-size: 1\nbatch-size: 2', /not valid YAML/);
  });

  test('a missing file is a usage error; an empty one is no values', () => {
    const dir = tempDir();
    assert.throws(() => loadConfigFile(join(dir, 'nope.yml')), /--config: cannot read .*nope\.yml: ENOENT/);
    writeFileSync(join(dir, 'empty.yml'), '# nothing\n');
    assert.deepEqual(loadConfigFile(join(dir, 'empty.yml')).values, {});
  });
});
