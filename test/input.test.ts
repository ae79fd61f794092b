import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Database } from '../src/db/pool';
import { LeaseQueue } from '../src/pipeline/queue';
import { catchUp } from '../src/sources/catch-up';
import { Metrics } from '../src/metrics';
import { connect, TestCluster } from './helpers/pg';
import { insertLeases } from './helpers/leases';
import { memoryLogger } from './helpers/monitor';
import {
  checkLeasableAddress,
  classifyLease,
  formatIPv4,
  InvalidLeaseError,
  macFileStem,
  parseHwaddr,
  parseIPv4,
  sanitizeHostname,
} from '../src/lease';
import { parseHeader, parseRow, unescapeField } from '../src/sources/memfile-row';
import { parseNotifyPayload } from '../src/sources/notify-payload';
import { CSV_HEADER } from './helpers/leases';

describe('lease validation', () => {
  test('IPv4 addresses round-trip and bad ones are refused', () => {
    assert.equal(parseIPv4('10.0.0.5'), 167772165);
    assert.equal(parseIPv4('255.255.255.255'), 4294967295);
    assert.equal(formatIPv4(167772165), '10.0.0.5');
    for (const bad of ['10.0.0', '10.0.0.256', '010.0.0.1', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.4; DROP', '']) {
      assert.throws(() => parseIPv4(bad), InvalidLeaseError, bad);
    }
  });

  test('hardware addresses in CSV and hex forms; file names are hex and dashes only', () => {
    assert.equal(parseHwaddr('aa:bb:cc:dd:ee:ff').toString('hex'), 'aabbccddeeff');
    assert.equal(parseHwaddr('AABBCCDDEEFF').toString('hex'), 'aabbccddeeff');
    assert.equal(parseHwaddr('').length, 0);
    assert.equal(macFileStem(parseHwaddr('aa:bb:cc:dd:ee:ff')), 'aa-bb-cc-dd-ee-ff');
    for (const bad of ['aa:bb:cc:dd:ee:gg', '../../etc', 'aabbc', 'aa'.repeat(21), 'aa:bb/cc']) {
      assert.throws(() => parseHwaddr(bad), InvalidLeaseError, bad);
    }
  });

  test('hostnames: control characters stripped, UTF-8 kept valid, at most 255 bytes', () => {
    assert.equal(sanitizeHostname('bmc-01.example.'), 'bmc-01.example.');
    assert.equal(sanitizeHostname('a\u0000b\u0007c\u001b[2Jd\u007f\u0085e\u2028'), 'abc[2Jde');
    assert.equal(sanitizeHostname(Buffer.from([0x61, 0xc3, 0x28, 0x62])), 'a\ufffd(b');
    assert.equal(sanitizeHostname('x\ud800y'), 'x\ufffdy', 'lone surrogates would be invalid UTF-8');
    assert.equal(sanitizeHostname('   '), null);
    assert.equal(sanitizeHostname(null), null);
    const long = sanitizeHostname('a'.repeat(10_000));
    assert.equal(long?.length, 255);
    const multibyte = sanitizeHostname('\u{1F600}'.repeat(100)) ?? '';
    assert.ok(Buffer.byteLength(multibyte) <= 255);
    assert.equal(multibyte, '\u{1F600}'.repeat(63), 'never splits a character');
    const sql = "'; DROP TABLE hosts; --";
    assert.equal(sanitizeHostname(sql), sql, 'SQL characters are data, kept as they are');
  });

  test('only live leases in selected subnets are reserved', () => {
    const base = {
      address: 1,
      hwaddr: Buffer.from('aabbccddeeff', 'hex'),
      subnetId: 1,
      hostname: null,
      validLifetime: 3600,
      expire: 2e9,
      state: 0,
    };
    const all = new Set<number>();
    assert.equal(classifyLease(base, 'memfile', all, 1e9).kind, 'live');
    const reason = (f: Partial<typeof base>, subnets = all): string => {
      const c = classifyLease({ ...base, ...f }, 'memfile', subnets, 1e9);
      return c.kind === 'live' ? 'live' : `${c.kind}: ${c.reason}`;
    };
    assert.equal(reason({ validLifetime: 0 }), 'ignored: deleted');
    assert.equal(reason({ state: 1 }), 'ignored: not-default-state');
    assert.equal(reason({ state: 2 }), 'ignored: not-default-state');
    assert.equal(reason({ expire: 1e9 - 1 }), 'ignored: expired');
    assert.equal(reason({ hwaddr: Buffer.alloc(0) }), 'ignored: no-hwaddr');
    assert.equal(reason({ subnetId: 0 }), 'ignored: no-subnet');
    assert.equal(reason({ subnetId: 2 }, new Set([1])), 'not-selected: subnet');
    assert.equal(reason({ subnetId: 2 }, new Set([1, 2])), 'live');
  });
});

// Addresses no DHCP server leases, each with the reason the error must give.
const UNLEASABLE: [string, RegExp][] = [
  ['0.0.0.0', /0\.0\.0\.0 cannot be leased: .*this network/],
  ['0.1.2.3', /0\.1\.2\.3 cannot be leased: .*0\.0\.0\.0\/8/],
  ['127.0.0.1', /127\.0\.0\.1 cannot be leased: .*loopback/],
  ['127.255.255.254', /loopback/],
  ['224.0.0.1', /224\.0\.0\.1 cannot be leased: .*multicast/],
  ['239.255.255.255', /multicast/],
  ['240.0.0.1', /240\.0\.0\.1 cannot be leased: .*reserved/],
  ['255.255.255.254', /reserved/],
  ['255.255.255.255', /255\.255\.255\.255 cannot be leased: .*broadcast/],
];
const LEASABLE = ['1.0.0.0', '10.0.0.1', '126.255.255.255', '128.0.0.0', '192.168.1.255', '223.255.255.255'];

describe('unleasable addresses', () => {
  test('one check names the address and why', () => {
    for (const [ip, why] of UNLEASABLE)
      assert.throws(
        () => checkLeasableAddress(parseIPv4(ip)),
        (e: Error) => e instanceof InvalidLeaseError && why.test(e.message),
        ip,
      );
    for (const ip of LEASABLE) assert.equal(checkLeasableAddress(parseIPv4(ip)), parseIPv4(ip), ip);
    for (const n of [-1, 2 ** 32, 1.5, NaN]) assert.throws(() => checkLeasableAddress(n), /out of IPv4 range/);
  });

  test('refused in CSV rows and in NOTIFY payloads alike', () => {
    const header = parseHeader(CSV_HEADER);
    const payload = (ip: string) =>
      JSON.stringify({
        v: 1,
        op: 'insert',
        address: parseIPv4(ip),
        hwaddr: 'aabbccddeeff',
        subnet_id: 1,
        state: 0,
        valid_lifetime: 3600,
        expire: 1900000000,
        hostname: 'h',
      });
    for (const [ip, why] of UNLEASABLE) {
      assert.throws(() => parseRow(`${ip},aa:bb:cc:dd:ee:ff,,3600,1900000000,1,0,0,h,0,`, header), why, `CSV ${ip}`);
      assert.throws(() => parseNotifyPayload(payload(ip)), why, `NOTIFY ${ip}`);
    }
    for (const ip of LEASABLE) {
      assert.equal(parseRow(`${ip},aa:bb:cc:dd:ee:ff,,3600,1900000000,1,0,0,h,0,`, header).address, parseIPv4(ip));
      assert.equal(parseNotifyPayload(payload(ip)).address, parseIPv4(ip));
    }
  });
});

describe('unleasable addresses in lease4 (catch-up path, real PostgreSQL)', () => {
  let cluster: TestCluster;
  before(() => {
    cluster = TestCluster.start();
  });
  after(() => cluster.stop());

  test('catch-up refuses them with the same check, counts and logs them, and queues the rest', async () => {
    const db = await cluster.freshDatabase();
    const c = await connect(db);
    await insertLeases(c, [
      { ip: '127.0.0.1', mac: '02:00:00:00:09:01' },
      { ip: '224.0.0.5', mac: '02:00:00:00:09:02' },
      { ip: '255.255.255.255', mac: '02:00:00:00:09:03' },
      { ip: '10.9.0.4', mac: '02:00:00:00:09:04' },
    ]);
    await c.end();
    const pool = new Database(db, 1, memoryLogger().logger);
    const queue = new LeaseQueue(100);
    const { logger, logs } = memoryLogger();
    const metrics = new Metrics();
    const queued: string[] = [];
    let running = true;
    const consumer = (async () => {
      while (running) {
        for (const e of queue.take(100)) {
          queued.push(formatIPv4(e.lease.address));
          e.waiters.forEach((w) => w());
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      assert.equal(await catchUp(pool, new Set(), queue, logger, metrics), 1);
      assert.deepEqual(queued, ['10.9.0.4']);
      assert.equal(metrics.value('kea_lease_monitor_input_rejected_total', { source: 'database', reason: 'invalid-row' }), 3);
      assert.ok(logs.some((l) => l.includes('127.0.0.1 cannot be leased') && l.includes('loopback')));
    } finally {
      running = false;
      await consumer;
      await pool.end();
    }
  });
});

describe('memfile rows', () => {
  const header = parseHeader(CSV_HEADER);

  test('parses a real Kea 2.2 row and unescapes commas', () => {
    const f = parseRow('10.0.0.5,aa:bb:cc:dd:ee:ff,01:aa:bb:cc:dd:ee:ff,3600,1900000000,1,0,0,rack-1&#x2cslot-2,0,', header);
    assert.deepEqual(
      { ...f, hwaddr: f.hwaddr.toString('hex') },
      {
        address: 167772165,
        hwaddr: 'aabbccddeeff',
        validLifetime: 3600,
        expire: 1900000000,
        subnetId: 1,
        hostname: 'rack-1,slot-2',
        state: 0,
      },
    );
    assert.equal(unescapeField('a&#x2cb&#x2Cc'), 'a,b,c');
  });

  test('reads columns by name, so a Kea 3.x header with pool_id works', () => {
    const h3 = parseHeader(`${CSV_HEADER},pool_id`);
    const f = parseRow('10.0.0.6,aa:bb:cc:dd:ee:01,,3600,1900000000,4,0,0,,0,,7', h3);
    assert.equal(f.subnetId, 4);
    assert.equal(f.hostname, null);
  });

  test('malformed rows are refused with a reason', () => {
    const cases: [string, RegExp][] = [
      ['10.0.0.5,aa:bb:cc:dd:ee:ff,,3600', /4 fields/],
      ['10.0.0.999,aa:bb:cc:dd:ee:ff,,3600,1900000000,1,0,0,h,0,', /not a valid IPv4/],
      ['10.0.0.5,zz:bb:cc:dd:ee:ff,,3600,1900000000,1,0,0,h,0,', /hwaddr/],
      ['10.0.0.5,aa:bb:cc:dd:ee:ff,,-1,1900000000,1,0,0,h,0,', /valid_lifetime/],
      ['10.0.0.5,aa:bb:cc:dd:ee:ff,,3600,soon,1,0,0,h,0,', /expire/],
      ['10.0.0.5,aa:bb:cc:dd:ee:ff,,3600,1900000000,99999999999,0,0,h,0,', /subnet_id/],
    ];
    for (const [row, why] of cases) assert.throws(() => parseRow(row, header), why, row);
    assert.throws(() => parseHeader('address,hwaddr'), /no "valid_lifetime" column/);
  });
});

describe('NOTIFY payloads', () => {
  const good = {
    v: 1,
    op: 'insert',
    address: 167772165,
    hwaddr: 'aabbccddeeff',
    subnet_id: 1,
    state: 0,
    valid_lifetime: 3600,
    expire: 1900000000,
    hostname: 'h',
  };

  test('a payload from the trigger is accepted', () => {
    const f = parseNotifyPayload(JSON.stringify(good));
    assert.equal(f.address, 167772165);
    assert.equal(f.hwaddr.toString('hex'), 'aabbccddeeff');
  });

  test('forged or broken payloads are refused, each with a reason', () => {
    const bad: [string, RegExp][] = [
      ['not json', /not JSON/],
      ['[1,2]', /not a JSON object/],
      ['null', /not a JSON object/],
      [JSON.stringify({ ...good, v: 2 }), /version/],
      [JSON.stringify({ ...good, op: 'delete' }), /op/],
      [JSON.stringify({ ...good, address: -1 }), /address/],
      [JSON.stringify({ ...good, address: 2 ** 33 }), /out of IPv4 range/],
      [JSON.stringify({ ...good, address: '10.0.0.1' }), /address/],
      [JSON.stringify({ ...good, hwaddr: '../..' }), /hwaddr/],
      [JSON.stringify({ ...good, hwaddr: 5 }), /hwaddr/],
      [JSON.stringify({ ...good, subnet_id: 1.5 }), /subnet_id/],
      [JSON.stringify({ ...good, hostname: { $ne: 1 } }), /hostname/],
      ['x'.repeat(9000), /longer/],
    ];
    for (const [payload, why] of bad) assert.throws(() => parseNotifyPayload(payload), why, payload.slice(0, 40));
  });
});
