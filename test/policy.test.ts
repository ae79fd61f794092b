import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../src/errors';
import { parseHwaddr, parseIPv4 } from '../src/lease';
import { parseCidr, parseMacPrefix } from '../src/policy/rules';
import { compilePolicy, PolicyConfig, selectLease } from '../src/policy/select';

const none: PolicyConfig = { subnetIds: [], allowMacPrefix: [], denyMacPrefix: [], allowHostname: [], denyHostname: [], allowAddress: [] };

const devices = [
  { name: 'bmc-a', mac: '0c:c4:7a:00:00:01', ip: '10.0.200.5', hostname: 'bmc-rack1', subnetId: 1 },
  { name: 'bmc-b', mac: '0c:c4:7a:00:00:02', ip: '10.0.200.70', hostname: 'BMC-rack2', subnetId: 1 },
  { name: 'laptop', mac: '3c:22:fb:00:00:01', ip: '10.0.200.20', hostname: 'laptop', subnetId: 1 },
  { name: 'phone', mac: '3c:22:fb:00:00:02', ip: '10.0.200.21', hostname: "Alice's iPhone", subnetId: 1 },
  { name: 'guest', mac: '02:00:00:00:00:09', ip: '10.0.201.5', hostname: null, subnetId: 2 },
  { name: 'bmc-guestnet', mac: '0c:c4:7a:00:00:03', ip: '10.0.201.6', hostname: 'bmc-x', subnetId: 2 },
].map((d) => ({ ...d, hwaddr: parseHwaddr(d.mac), address: parseIPv4(d.ip) }));

function picked(over: Partial<PolicyConfig>): string[] {
  const p = compilePolicy({ ...none, ...over });
  return devices.filter((d) => selectLease(d, p).selected).map((d) => d.name);
}

function reasons(over: Partial<PolicyConfig>): Record<string, string> {
  const p = compilePolicy({ ...none, ...over });
  const out: Record<string, string> = {};
  for (const d of devices) {
    const s = selectLease(d, p);
    out[d.name] = s.selected ? 'selected' : s.reason;
  }
  return out;
}

describe('selection policy', () => {
  test('no rule selects everything', () => {
    assert.deepEqual(
      picked({}),
      devices.map((d) => d.name),
    );
  });

  test('each rule alone selects exactly what it should', () => {
    assert.deepEqual(picked({ subnetIds: [2] }), ['guest', 'bmc-guestnet']);
    assert.deepEqual(picked({ allowMacPrefix: ['0c:c4:7a'] }), ['bmc-a', 'bmc-b', 'bmc-guestnet']);
    assert.deepEqual(picked({ allowMacPrefix: ['0c'] }), ['bmc-a', 'bmc-b', 'bmc-guestnet']);
    assert.deepEqual(picked({ allowMacPrefix: ['3c:22:fb:00:00:02'] }), ['phone']);
    assert.deepEqual(picked({ denyMacPrefix: ['3c:22:fb'] }), ['bmc-a', 'bmc-b', 'guest', 'bmc-guestnet']);
    assert.deepEqual(picked({ allowHostname: ['^bmc-'] }), ['bmc-a', 'bmc-b', 'bmc-guestnet'], 'case-insensitive');
    assert.deepEqual(picked({ allowHostname: ['rack'] }), ['bmc-a', 'bmc-b'], 'anchored only by the user');
    assert.deepEqual(
      picked({ denyHostname: ['iphone|laptop'] }),
      ['bmc-a', 'bmc-b', 'guest', 'bmc-guestnet'],
      'no hostname is never denied',
    );
    assert.deepEqual(picked({ allowAddress: ['10.0.200.0/26'] }), ['bmc-a', 'laptop', 'phone']);
    assert.deepEqual(picked({ allowAddress: ['10.0.200.70'] }), ['bmc-b']);
  });

  test('deny wins over allow, and combined rules all apply', () => {
    assert.deepEqual(picked({ allowMacPrefix: ['0c:c4:7a'], denyMacPrefix: ['0c:c4:7a:00:00:02'] }), ['bmc-a', 'bmc-guestnet']);
    assert.deepEqual(picked({ allowHostname: ['^bmc'], denyHostname: ['rack2$'] }), ['bmc-a', 'bmc-guestnet']);
    assert.deepEqual(picked({ allowMacPrefix: ['0c:c4:7a'], denyHostname: ['^bmc-x$'] }), ['bmc-a', 'bmc-b']);
    assert.deepEqual(picked({ subnetIds: [1], allowMacPrefix: ['0c:c4:7a'], allowAddress: ['10.0.200.0/26'] }), ['bmc-a']);
    assert.deepEqual(reasons({ subnetIds: [1], allowMacPrefix: ['0c:c4:7a'], denyHostname: ['rack2'], allowAddress: ['10.0.200.0/26'] }), {
      'bmc-a': 'selected',
      'bmc-b': 'hostname-denied',
      laptop: 'mac-not-allowed',
      phone: 'mac-not-allowed',
      guest: 'subnet',
      'bmc-guestnet': 'subnet',
    });
    assert.equal(reasons({ allowHostname: ['.'] }).guest, 'hostname-not-allowed', 'no hostname cannot match an allow pattern');
  });

  test('bad rules are usage errors naming the value', () => {
    for (const bad of ['', '0c:c4:7', 'zz', '01:02:03:04:05:06:07', '0c::c4', '0cc', '0c:c4:7a:']) {
      assert.throws(() => parseMacPrefix(bad), UsageError, bad);
    }
    for (const bad of ['10.0.0.0/33', '10.0.0.1/24', '300.0.0.0/8', 'ten', '10.0.0.0/']) {
      assert.throws(() => parseCidr(bad), UsageError, bad);
    }
    assert.throws(() => compilePolicy({ ...none, denyHostname: ['(unclosed'] }), /"\(unclosed" is not a valid regular expression/);
    assert.deepEqual(parseMacPrefix('0C-C4-7A').text, '0c:c4:7a');
    assert.deepEqual(parseCidr('10.0.0.0/8').text, '10.0.0.0/8');
  });
});
