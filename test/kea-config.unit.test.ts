import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { KeaConfigError, readDhcp4Config } from '../src/kea/config';
import { reservedAddressProblem, subnetVerdicts, Verdict, WriterKind } from '../src/kea/config-verdict';
import { parseIPv4 } from '../src/lease';
import { keaSelection } from '../src/policy/kea';

type Obj = Record<string, unknown>;

const PG = { type: 'postgresql', name: 'kea', host: '/run/pgsock', port: 5432, user: 'kea' };

/** The global part of what kea-dhcp4 2.2's config-get returns with the defaults filled in. */
function dhcp4(over: Obj = {}): Obj {
  return {
    'hosts-databases': [PG],
    'host-reservation-identifiers': ['hw-address'],
    'reservations-global': false,
    'reservations-in-subnet': true,
    'reservations-out-of-pool': false,
    subnet4: [{ id: 1, subnet: '10.99.0.0/16', pools: [{ pool: '10.99.1.0-10.99.255.254' }] }],
    ...over,
  };
}

function verdicts(d: Obj, writer: WriterKind = 'sql'): Record<number, Verdict> {
  const out: Record<number, Verdict> = {};
  for (const v of subnetVerdicts(readDhcp4Config({ Dhcp4: d }), writer).values()) out[v.subnetId] = v.verdict;
  return out;
}

function flagsOf(d: Obj, id = 1): [boolean, boolean, boolean] {
  const f = readDhcp4Config({ Dhcp4: d }).subnets.get(id)!.flags;
  return [f.global.value, f.inSubnet.value, f.outOfPool.value];
}

describe("kea config: the verdict per subnet (what Kea's allocation engine does with a subnet's hw-address reservation)", () => {
  test('the defaults honour reservations', () => {
    assert.deepEqual(verdicts(dhcp4()), { 1: 'honoured' });
    // A configuration without the defaults filled in (a hand-written file): Kea's own defaults apply.
    assert.deepEqual(verdicts({ 'hosts-database': PG, subnet4: [{ id: 1, subnet: '10.0.0.0/24' }] }), { 1: 'honoured' });
  });

  test('host-reservation-identifiers: hw-address anywhere in the list is enough; without it nothing is honoured', () => {
    assert.equal(verdicts(dhcp4({ 'host-reservation-identifiers': ['client-id', 'hw-address'] }))[1], 'honoured');
    assert.equal(verdicts(dhcp4({ 'host-reservation-identifiers': ['auto'] }))[1], 'honoured');
    assert.equal(verdicts(dhcp4({ 'host-reservation-identifiers': ['client-id', 'duid'] }))[1], 'no-hw-address-identifier');
    assert.equal(verdicts(dhcp4({ 'host-reservation-identifiers': [] }))[1], 'no-hw-address-identifier');
    const { 'host-reservation-identifiers': _, ...noList } = dhcp4();
    assert.equal(verdicts(noList)[1], 'honoured', "absent: DHCPv4's default list, which starts with hw-address");
  });

  test('hosts database: the sql writer needs a PostgreSQL one, the kea-api writer any', () => {
    assert.equal(verdicts(dhcp4({ 'hosts-databases': undefined }))[1], 'no-hosts-database');
    assert.equal(verdicts(dhcp4({ 'hosts-databases': [{ type: 'mysql' }] }))[1], 'no-hosts-database');
    assert.equal(verdicts(dhcp4({ 'hosts-databases': [{ type: 'mysql' }] }), 'kea-api')[1], 'honoured');
    assert.equal(verdicts(dhcp4({ 'hosts-databases': undefined }), 'kea-api')[1], 'no-hosts-database');
    assert.equal(verdicts(dhcp4({ 'hosts-databases': [{ type: 'mysql' }, PG] }))[1], 'honoured');
  });

  test('reservations-in-subnet false: disabled, or global-only when reservations-global is on', () => {
    assert.equal(verdicts(dhcp4({ 'reservations-in-subnet': false }))[1], 'reservations-disabled');
    assert.equal(verdicts(dhcp4({ 'reservations-in-subnet': false, 'reservations-global': true }))[1], 'global-only');
    assert.equal(verdicts(dhcp4({ 'reservations-global': true }))[1], 'honoured', 'global and in-subnet together: both are looked up');
    const v = subnetVerdicts(readDhcp4Config({ Dhcp4: dhcp4({ 'reservations-in-subnet': false }) }), 'sql').get(1)!;
    assert.match(v.detail, /reservations-in-subnet is false \(set at global level\)/);
  });

  test('out-of-pool alone keeps the verdict honoured but is flagged', () => {
    const v = subnetVerdicts(readDhcp4Config({ Dhcp4: dhcp4({ 'reservations-out-of-pool': true }) }), 'sql').get(1)!;
    assert.deepEqual([v.verdict, v.outOfPool], ['honoured', true]);
    assert.match(v.detail, /inside a pool is ignored/);
  });

  test('global -> shared network -> subnet, each flag on its own', () => {
    const d = dhcp4({
      'reservations-in-subnet': false,
      subnet4: [
        { id: 1, subnet: '10.0.1.0/24' },
        { id: 2, subnet: '10.0.2.0/24', 'reservations-in-subnet': true },
      ],
      'shared-networks': [
        {
          name: 'rack',
          'reservations-in-subnet': true,
          'reservations-out-of-pool': true,
          subnet4: [
            { id: 3, subnet: '10.0.3.0/24' },
            { id: 4, subnet: '10.0.4.0/24', 'reservations-in-subnet': false, 'reservations-global': true },
            { id: 5, subnet: '10.0.5.0/24', 'reservations-out-of-pool': false },
          ],
        },
        { name: 'plain', subnet4: [{ id: 6, subnet: '10.0.6.0/24' }] },
      ],
    });
    assert.deepEqual(verdicts(d), {
      1: 'reservations-disabled',
      2: 'honoured',
      3: 'honoured',
      4: 'global-only',
      5: 'honoured',
      6: 'reservations-disabled',
    });
    const c = readDhcp4Config({ Dhcp4: d });
    assert.deepEqual(
      [3, 4, 5, 6].map((id) => {
        const f = c.subnets.get(id)!.flags;
        return [f.inSubnet.from, f.outOfPool.value, f.outOfPool.from, f.global.from];
      }),
      [
        ['shared-network', true, 'shared-network', 'global'],
        ['subnet', true, 'shared-network', 'subnet'],
        ['shared-network', false, 'subnet', 'global'],
        ['global', false, 'global', 'global'],
      ],
    );
    assert.equal(c.subnets.get(3)!.sharedNetwork, 'rack');
  });
});

describe('kea config: reservation-mode, as Kea 2.2 translates it per scope before inheritance', () => {
  // [mode, global, in-subnet, out-of-pool] with the outer scope's out-of-pool at true, to see what a mode leaves unset.
  const table: [string, boolean, boolean, boolean, Verdict][] = [
    ['disabled', false, false, true, 'reservations-disabled'],
    ['off', false, false, true, 'reservations-disabled'],
    ['out-of-pool', false, true, true, 'honoured'],
    ['global', true, false, true, 'global-only'],
    ['all', false, true, false, 'honoured'],
  ];
  for (const [mode, g, i, o, verdict] of table) {
    test(`"${mode}" at subnet, shared-network and global level`, () => {
      const atSubnet = dhcp4({
        'reservations-out-of-pool': true,
        subnet4: [{ id: 1, subnet: '10.0.1.0/24', 'reservation-mode': mode }],
      });
      assert.deepEqual(flagsOf(atSubnet), [g, i, o]);
      assert.equal(verdicts(atSubnet)[1], verdict);
      const atShared = dhcp4({
        'reservations-out-of-pool': true,
        subnet4: [],
        'shared-networks': [{ name: 'n', 'reservation-mode': mode, subnet4: [{ id: 1, subnet: '10.0.1.0/24' }] }],
      });
      assert.deepEqual(flagsOf(atShared), [g, i, o]);
      // At global level Kea translates first, then fills in the defaults (out-of-pool false when unset).
      const atGlobal: Obj = { 'hosts-database': PG, 'reservation-mode': mode, subnet4: [{ id: 1, subnet: '10.0.1.0/24' }] };
      assert.deepEqual(flagsOf(atGlobal), [g, i, mode === 'out-of-pool']);
    });
  }

  test('the new flags in an inner scope win over a mode in an outer one, and the other way round', () => {
    const d: Obj = {
      'hosts-database': PG,
      'reservation-mode': 'disabled',
      subnet4: [
        { id: 1, subnet: '10.0.1.0/24', 'reservations-in-subnet': true },
        { id: 2, subnet: '10.0.2.0/24' },
      ],
      'shared-networks': [
        { name: 'n', 'reservations-in-subnet': false, subnet4: [{ id: 3, subnet: '10.0.3.0/24', 'reservation-mode': 'all' }] },
      ],
    };
    assert.deepEqual(verdicts(d), { 1: 'honoured', 2: 'reservations-disabled', 3: 'honoured' });
  });

  test('a mode next to a new flag in the same scope, or an unknown mode, is refused as Kea refuses it', () => {
    assert.throws(
      () => readDhcp4Config({ Dhcp4: dhcp4({ 'reservation-mode': 'all' }) }),
      (e: Error) => e instanceof KeaConfigError && /Dhcp4: both "reservation-mode" and/.test(e.message),
    );
    assert.throws(
      () => readDhcp4Config({ Dhcp4: dhcp4({ subnet4: [{ id: 7, subnet: '10.0.0.0/24', 'reservation-mode': 'some' }] }) }),
      /subnet4\[0\] \(id 7\): "reservation-mode" is "some", not one of disabled, off, out-of-pool, global, all/,
    );
    assert.throws(
      () => readDhcp4Config({ Dhcp4: dhcp4({ subnet4: [{ id: 7, subnet: '10.0.0.0/24', 'reservation-mode': 'toString' }] }) }),
      /not one of/,
    );
  });
});

describe('kea config: reserved addresses Kea would ignore', () => {
  const cfg = (over: Obj) =>
    readDhcp4Config({
      Dhcp4: dhcp4({
        subnet4: [{ id: 1, subnet: '10.0.0.0/24', pools: [{ pool: '10.0.0.100 - 10.0.0.199' }, { pool: '10.0.0.224/28' }], ...over }],
      }),
    }).subnets.get(1)!;
  const problem = (over: Obj, ip: string) => reservedAddressProblem(cfg(over), parseIPv4(ip))?.problem ?? null;

  test('outside the prefix', () => {
    assert.equal(problem({}, '10.0.1.5'), 'outside-subnet');
    assert.equal(problem({}, '9.255.255.255'), 'outside-subnet');
    assert.equal(problem({}, '10.0.0.5'), null);
  });

  test('inside a pool only matters with out-of-pool reservations', () => {
    const oop = { 'reservations-out-of-pool': true };
    assert.equal(problem({}, '10.0.0.150'), null);
    assert.equal(problem(oop, '10.0.0.100'), 'in-pool-out-of-pool');
    assert.equal(problem(oop, '10.0.0.199'), 'in-pool-out-of-pool');
    assert.equal(problem(oop, '10.0.0.239'), 'in-pool-out-of-pool', 'the prefix form of a pool');
    assert.equal(problem(oop, '10.0.0.99'), null);
    assert.equal(problem(oop, '10.0.0.200'), null);
    assert.match(reservedAddressProblem(cfg(oop), parseIPv4('10.0.0.120'))!.detail, /inside pool 10.0.0.100-10.0.0.199/);
  });
});

describe("kea config: config-get's answer is untrusted", () => {
  const cases: [unknown, RegExp][] = [
    [null, /no "Dhcp4" object/],
    [{ Dhcp6: {} }, /no "Dhcp4" object/],
    [{ Dhcp4: dhcp4({ subnet4: {} }) }, /"subnet4" is not a list/],
    [{ Dhcp4: dhcp4({ subnet4: [{ subnet: '10.0.0.0/24' }] }) }, /"id" is undefined, not a subnet ID/],
    [{ Dhcp4: dhcp4({ subnet4: [{ id: 0, subnet: '10.0.0.0/24' }] }) }, /"id" is 0/],
    [{ Dhcp4: dhcp4({ subnet4: [{ id: 1.5, subnet: '10.0.0.0/24' }] }) }, /"id" is 1.5/],
    [{ Dhcp4: dhcp4({ subnet4: [{ id: 1, subnet: '10.0.0.0/33' }] }) }, /not an IPv4 prefix/],
    [{ Dhcp4: dhcp4({ subnet4: [{ id: 1, subnet: '300.0.0.0/8' }] }) }, /not an IPv4 address/],
    [{ Dhcp4: dhcp4({ subnet4: [{ id: 1, subnet: '10.0.0.0/8', pools: [{ pool: 'x' }] }] }) }, /pool "x" is neither/],
    [{ Dhcp4: dhcp4({ subnet4: [{ id: 1, subnet: '10.0.0.0/8', pools: [{ pool: '10.0.0.9-10.0.0.1' }] }] }) }, /ends before it starts/],
    [{ Dhcp4: dhcp4({ subnet4: [{ id: 1, subnet: '10.0.0.0/8', pools: ['10.0.0.1-10.0.0.2'] }] }) }, /pool 1 is not a JSON object/],
    [{ Dhcp4: dhcp4({ 'reservations-in-subnet': 'false' }) }, /Dhcp4: "reservations-in-subnet" is "false", not a boolean/],
    [{ Dhcp4: dhcp4({ 'host-reservation-identifiers': [1] }) }, /not a string/],
    [{ Dhcp4: dhcp4({ 'hosts-databases': [{}] }) }, /hosts database 1 has no "type"/],
    [{ Dhcp4: dhcp4({ 'shared-networks': [{ subnet4: [] }] }) }, /shared-networks\[0\]: has no "name"/],
    [{ Dhcp4: dhcp4({ 'shared-networks': [{ name: 'n', subnet4: [{ id: 1, subnet: '10.1.0.0/16' }] }] }) }, /subnet id 1 appears twice/],
  ];
  for (const [args, re] of cases) {
    test(`refused: ${re.source}`, () => {
      assert.throws(
        () => readDhcp4Config(args),
        (e: Error) => e instanceof KeaConfigError && re.test(e.message),
      );
    });
  }
});

describe('kea config: the selection rule it adds', () => {
  test('refuses only subnets with a verdict other than honoured; no configuration or an unknown subnet refuses nothing', () => {
    const v = subnetVerdicts(
      readDhcp4Config({
        Dhcp4: dhcp4({
          subnet4: [
            { id: 1, subnet: '10.0.1.0/24' },
            { id: 2, subnet: '10.0.2.0/24', 'reservations-in-subnet': false },
          ],
        }),
      }),
      'sql',
    );
    assert.deepEqual(keaSelection(1, v), { selected: true });
    assert.deepEqual(keaSelection(2, v), { selected: false, reason: 'kea-not-honoured' });
    assert.deepEqual(keaSelection(3, v), { selected: true });
    assert.deepEqual(keaSelection(2, null), { selected: true });
  });
});

describe('kea config: properties over generated configurations', () => {
  type Scope = { kind: 'flags'; g?: boolean; i?: boolean; o?: boolean } | { kind: 'mode'; mode: string } | { kind: 'none' };
  const maybe = fc.option(fc.boolean(), { nil: undefined });
  const scope: fc.Arbitrary<Scope> = fc.oneof(
    fc.constant<Scope>({ kind: 'none' }),
    fc.record({ kind: fc.constant('flags' as const), g: maybe, i: maybe, o: maybe }),
    fc.record({ kind: fc.constant('mode' as const), mode: fc.constantFrom('disabled', 'off', 'out-of-pool', 'global', 'all') }),
  );
  const toJson = (s: Scope): Obj => {
    if (s.kind === 'mode') return { 'reservation-mode': s.mode };
    if (s.kind === 'none') return {};
    const o: Obj = {};
    if (s.g !== undefined) o['reservations-global'] = s.g;
    if (s.i !== undefined) o['reservations-in-subnet'] = s.i;
    if (s.o !== undefined) o['reservations-out-of-pool'] = s.o;
    return o;
  };
  // The ARM's description of each mode, written out independently of src/kea/config.ts.
  const MODE: Record<string, { g?: boolean; i?: boolean; o?: boolean }> = {
    disabled: { g: false, i: false },
    off: { g: false, i: false },
    'out-of-pool': { g: false, i: true, o: true },
    global: { g: true, i: false },
    all: { g: false, i: true, o: false },
  };
  const expand = (s: Scope) => (s.kind === 'mode' ? MODE[s.mode] : s.kind === 'flags' ? s : {});
  const ids = fc.uniqueArray(fc.constantFrom('hw-address', 'duid', 'circuit-id', 'client-id', 'flex-id'), { maxLength: 5 });
  const db = fc.constantFrom<unknown[]>([], [{ type: 'postgresql' }], [{ type: 'mysql' }], [{ type: 'mysql' }, { type: 'postgresql' }]);

  test('the verdict matches a model of the allocation engine, for every combination of scopes', () => {
    fc.assert(
      fc.property(
        scope,
        fc.option(scope, { nil: undefined }),
        scope,
        ids,
        db,
        fc.constantFrom<WriterKind>('sql', 'kea-api'),
        (g, n, s, id, dbs, writer) => {
          const sub = { id: 9, subnet: '192.0.2.0/24', ...toJson(s) };
          const d: Obj = { ...toJson(g), 'host-reservation-identifiers': id, 'hosts-databases': dbs };
          if (n === undefined) d.subnet4 = [sub];
          else d['shared-networks'] = [{ name: 'n', ...toJson(n), subnet4: [sub] }];
          const eff = (k: 'g' | 'i' | 'o', dflt: boolean) => expand(s)[k] ?? (n ? expand(n)[k] : undefined) ?? expand(g)[k] ?? dflt;
          const types = (dbs as { type: string }[]).map((x) => x.type);
          const expected: Verdict = !(writer === 'sql' ? types.includes('postgresql') : types.length > 0)
            ? 'no-hosts-database'
            : !id.includes('hw-address')
              ? 'no-hw-address-identifier'
              : eff('i', true)
                ? 'honoured'
                : eff('g', false)
                  ? 'global-only'
                  : 'reservations-disabled';
          const v = subnetVerdicts(readDhcp4Config({ Dhcp4: d }), writer).get(9)!;
          assert.equal(v.verdict, expected);
          assert.equal(v.outOfPool, eff('i', true) && eff('o', false));
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('an address is flagged exactly when it is outside the prefix, or inside a pool with out-of-pool on', () => {
    fc.assert(
      fc.property(fc.integer({ min: 8, max: 30 }), fc.nat(), fc.nat(), fc.nat(), fc.boolean(), fc.nat(), (bits, base, a, b, oop, addr) => {
        const mask = (0xffffffff << (32 - bits)) >>> 0;
        const net = ((base >>> 0) & mask & 0xdfffffff) >>> 0;
        const size = 2 ** (32 - bits);
        const [lo, hi] = [a % size, b % size].sort((x, y) => x - y);
        const fmt = (x: number) => [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255].join('.');
        const c = readDhcp4Config({
          Dhcp4: dhcp4({
            subnet4: [
              {
                id: 1,
                subnet: `${fmt(net)}/${bits}`,
                'reservations-out-of-pool': oop,
                pools: [{ pool: `${fmt(net + lo)} - ${fmt(net + hi)}` }],
              },
            ],
          }),
        }).subnets.get(1)!;
        const address = (net + (addr % (size * 2))) >>> 0;
        const inside = address - net < size;
        const inPool = address >= net + lo && address <= net + hi;
        const expected = !inside ? 'outside-subnet' : oop && inPool ? 'in-pool-out-of-pool' : null;
        assert.equal(reservedAddressProblem(c, address)?.problem ?? null, expected);
      }),
      { numRuns: 2000 },
    );
  });
});
