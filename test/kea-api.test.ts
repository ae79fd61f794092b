import assert from 'node:assert/strict';
import { createServer, Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { UsageError } from '../src/errors';
import { fixKeaStrings, KeaControlSocket, KeaTransportError, parseAnswer } from '../src/kea/control-socket';
import { parseHost } from '../src/kea/host-cmds';
import { buildOptions } from '../src/options';
import { KnownReservations } from '../src/writers/known';
import { tempDir } from './helpers/monitor';

describe('kea-api: control-socket answers are untrusted input', () => {
  test('a valid answer, and the Control Agent form (a one-element list)', () => {
    assert.deepEqual(parseAnswer('x', '{"result":0,"text":"Host found.","arguments":{"a":1}}'), {
      result: 0,
      text: 'Host found.',
      arguments: { a: 1 },
    });
    assert.equal(parseAnswer('x', '[{"result":3,"text":"Host not found."}]').result, 3);
  });

  test('malformed answers are refused, naming the command and what was wrong', () => {
    const cases: [string, RegExp][] = [
      ['not json', /reservation-get: .*not JSON/],
      ['[1,2]', /not a JSON object/],
      ['{"text":"x"}', /no valid "result"/],
      ['{"result":"0"}', /no valid "result"/],
      ['{"result":9}', /no valid "result"/],
      ['{"result":0,"text":5}', /"text" is not a string/],
    ];
    for (const [text, re] of cases)
      assert.throws(
        () => parseAnswer('reservation-get', text),
        (e: Error) => e instanceof KeaTransportError && re.test(e.message),
        text,
      );
  });

  test("Kea's per-byte \\u00XX escapes of UTF-8 text are undone; other text is left alone", () => {
    // What Kea 3.0 sends for the hostname "café-ü" (measured against kea-dhcp4 3.0.4).
    const wire = '{"result":0,"arguments":{"hostname":"caf\\u00c3\\u00a9-\\u00c3\\u00bc","x":["\\u00e9"]}}';
    const a = parseAnswer('reservation-get', wire).arguments as { hostname: string; x: string[] };
    assert.equal(a.hostname, 'café-ü');
    assert.equal(a.x[0], '\u00e9', 'a lone byte that is not UTF-8 stays as it was');
    assert.deepEqual(fixKeaStrings({ n: 1, b: true, s: 'plain', u: 'ü' }), { n: 1, b: true, s: 'plain', u: 'ü' });
  });
});

describe('kea-api: hosts from host_cmds', () => {
  const good = {
    'boot-file-name': '',
    'client-classes': [],
    hostname: 'pc1',
    'hw-address': '02:00:00:00:00:01',
    'ip-address': '10.0.0.5',
    'next-server': '0.0.0.0',
    'option-data': [],
    'server-hostname': '',
    'subnet-id': 1,
    'user-context': { a: 1 },
  };

  test('a host as reservation-get returns it', () => {
    const h = parseHost(good, 't');
    assert.equal(h.hwaddr?.toString('hex'), '020000000001');
    assert.deepEqual([h.subnetId, h.address, h.hostname, h.userContext, h.extra], [1, 0x0a000005, 'pc1', { a: 1 }, {}]);
  });

  test('no address, empty hostname, other identifiers, settings worth carrying over', () => {
    const { 'hw-address': _hw, 'ip-address': _ip, ...rest } = good;
    const h = parseHost({ ...rest, 'client-id': '01aa', hostname: '', 'boot-file-name': 'pxe.0', 'option-data': [{ code: 6 }] }, 't');
    assert.deepEqual([h.hwaddr, h.address, h.hostname], [null, null, null]);
    assert.deepEqual(h.extra, { 'boot-file-name': 'pxe.0', 'option-data': [{ code: 6 }] });
    assert.equal(parseHost({ ...good, 'ip-address': '0.0.0.0' }, 't').address, null);
  });

  test('malformed hosts are refused, naming the field', () => {
    const cases: [unknown, RegExp][] = [
      [null, /not a JSON object/],
      [{ ...good, 'subnet-id': '1' }, /"subnet-id"/],
      [{ ...good, 'subnet-id': 2 ** 33 }, /out of range/],
      [{ ...good, 'hw-address': 'zz:00' }, /not hexadecimal/],
      [{ ...good, 'hw-address': 5 }, /"hw-address" is not a string/],
      [{ ...good, 'ip-address': '10.0.0.300' }, /not a valid IPv4/],
      [{ ...good, hostname: 7 }, /"hostname"/],
      [{ ...good, 'user-context': [1] }, /"user-context" is not a JSON object/],
      [{ 'subnet-id': 1 }, /no identifier/],
    ];
    for (const [v, re] of cases)
      assert.throws(
        () => parseHost(v, 'reservation-get'),
        (e: Error) => e instanceof KeaTransportError && re.test(e.message),
        JSON.stringify(v),
      );
  });
});

describe('kea-api: what is known to be reserved', () => {
  test('bounded, least recently used out first', () => {
    const k = new KnownReservations(2);
    k.set('a', { kind: 'reserved', address: 1, hostname: null });
    k.set('b', { kind: 'reserved', address: 2, hostname: null });
    assert.ok(k.get('a')); // a is now the most recent
    k.set('c', { kind: 'reserved', address: 3, hostname: null });
    assert.deepEqual([k.size, !!k.get('a'), !!k.get('b'), !!k.get('c')], [2, true, false, true]);
  });

  test('negative answers expire; positive ones do not', () => {
    const k = new KnownReservations(10);
    k.set('f', { kind: 'foreign', address: 1, until: 1000 });
    k.set('r', { kind: 'reserved', address: 2, hostname: 'x' });
    assert.equal(k.get('f', 999)?.kind, 'foreign');
    assert.equal(k.get('f', 1000), undefined);
    assert.equal(k.get('r', 1e15)?.kind, 'reserved');
  });
});

describe('kea-api: the control-socket client', () => {
  const dir = tempDir('klm-kea-api-');
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  test('an absent socket is a transport error naming the path', async () => {
    const s = new KeaControlSocket(join(dir, 'absent.sock'), { timeoutMs: 1000, concurrency: 1 });
    await assert.rejects(s.send('list-commands'), (e: Error) => e instanceof KeaTransportError && /absent\.sock: ENOENT/.test(e.message));
  });

  test('a socket that never answers times out', async () => {
    const path = join(dir, 'silent.sock');
    const server = createServer(() => undefined);
    servers.push(server);
    await new Promise<void>((r) => server.listen(path, r));
    const s = new KeaControlSocket(path, { timeoutMs: 200, concurrency: 1 });
    await assert.rejects(s.send('list-commands'), /no answer from .* within 200 ms/);
  });
});

describe('kea-api: flags', () => {
  test('--writer defaults to sql; kea-api needs --kea-control-socket', () => {
    const o = buildOptions({}, {});
    assert.deepEqual([o.writer, o.keaControlSocket, o.keaApiConcurrency, o.keaApiTimeout], ['sql', null, 4, 10]);
    assert.throws(
      () => buildOptions({ writer: 'kea-api' }, {}),
      (e: Error) => e instanceof UsageError && /--kea-control-socket/.test(e.message),
    );
    const k = buildOptions(
      {},
      { KEA_LM_WRITER: 'kea-api', KEA_LM_KEA_CONTROL_SOCKET: '/run/kea/kea4-ctrl-socket', KEA_LM_KEA_API_CONCURRENCY: '8' },
    );
    assert.deepEqual([k.writer, k.keaControlSocket, k.keaApiConcurrency], ['kea-api', '/run/kea/kea4-ctrl-socket', 8]);
    assert.throws(() => buildOptions({ writer: 'rest' }, {}), /--writer: "rest" is not one of sql, kea-api/);
    assert.throws(() => buildOptions({ keaApiConcurrency: '0' }, {}), /--kea-api-concurrency: "0" is below the minimum 1/);
    const api = { writer: 'kea-api', keaControlSocket: '/run/kea/s' };
    for (const [extra, flag] of [
      [{ dryRun: true }, '--dry-run'],
      [{ maxReservationsPerSubnet: '5' }, '--max-reservations-per-subnet'],
      [{ pruneUnseenFor: '90d' }, '--prune-unseen-for'],
    ] as const) {
      assert.throws(
        () => buildOptions({ ...api, ...extra }, {}),
        (e: Error) => e instanceof UsageError && e.message === `${flag} works only with --writer sql`,
      );
    }
  });
});
