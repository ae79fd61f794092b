// The outcome reporter alone: for each reservation result, the counters it moves, the lines it logs
// (once where a repeat would say nothing new) and the outcome the discovery record carries.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ReservationOutcome } from '../src/domain/outcomes';
import type { Lease } from '../src/lease';
import { M, Metrics } from '../src/metrics';
import { OutcomeReport, WRITTEN_UNLOGGED } from '../src/pipeline/outcome-report';
import { ipToInt, macHex } from './helpers/leases';
import { memoryLogger } from './helpers/monitor';

const lease = (mac: string, ip: string, subnetId = 1, over: Partial<Lease> = {}): Lease => ({
  address: ipToInt(ip),
  hwaddr: Buffer.from(macHex(mac), 'hex'),
  subnetId,
  hostname: 'node',
  source: 'database',
  ...over,
});

function reporter(dryRun = false, level = 'debug') {
  const metrics = new Metrics([1, 2]);
  const { logger, logs } = memoryLogger(level);
  const report = new OutcomeReport({ reservationPolicy: { maxPerSubnet: 5 }, dryRun }, logger, metrics);
  const count = (result: ReservationOutcome, subnet = '1') => metrics.value(M.reservations[0], { result, subnet_id: subnet });
  return { metrics, logs, report, count };
}

describe('OutcomeReport', () => {
  test('each outcome: counted by result and subnet; the record carries created, updated, unchanged, conflict, foreign', () => {
    const { report, count } = reporter();
    const expect: Array<[ReservationOutcome, ReservationOutcome | null]> = [
      ['created', 'created'],
      ['updated', 'updated'],
      ['unchanged', 'unchanged'],
      ['conflict', 'conflict'],
      ['foreign', 'foreign'],
      ['limit', null],
      ['stale', null],
      ['superseded', null],
      ['failed', null],
    ];
    expect.forEach(([outcome, recorded], i) => {
      const r = { lease: lease(`02:00:00:00:01:${i.toString(16).padStart(2, '0')}`, `10.0.1.${i + 1}`), outcome, hostId: 7 };
      assert.equal(report.report(r), recorded, outcome);
      assert.equal(count(outcome), 1, `${outcome} counted once`);
    });
  });

  test('foreign is logged once per device, the cap once per subnet until a creation there, stale once per address', () => {
    const { report, logs, count } = reporter();
    const ops = lease('02:00:00:00:02:01', '10.0.2.1');
    for (let i = 0; i < 3; i++) report.report({ lease: ops, outcome: 'foreign', hostId: 9 });
    assert.equal(logs.filter((l) => l.includes('does not own')).length, 1);
    assert.equal(count('foreign'), 3);

    const capped = (n: number) => ({ lease: lease(`02:00:00:00:03:0${n}`, `10.0.3.${n}`), outcome: 'limit' as const, hostId: null });
    report.report(capped(1));
    report.report(capped(2));
    const warnings = () => logs.filter((l) => l.includes('--max-reservations-per-subnet')).length;
    assert.equal(warnings(), 1, 'one warning per subnet');
    assert.ok(logs.some((l) => l.includes('--max-reservations-per-subnet') && l.includes('"max":5')));
    report.report({ lease: lease('02:00:00:00:03:09', '10.0.3.9'), outcome: 'created', hostId: 1 });
    report.report(capped(3));
    assert.equal(warnings(), 2, 'a creation in the subnet re-arms the warning');

    const gone = { lease: lease('02:00:00:00:04:01', '10.0.4.1'), outcome: 'stale' as const, hostId: null };
    report.report(gone);
    report.report(gone);
    assert.equal(logs.filter((l) => l.includes('No live lease in lease4')).length, 1);
    assert.equal(count('stale'), 2);
  });

  test('stale lines: at most 10 per window, however many stale outcomes', () => {
    const { report, logs } = reporter();
    for (let i = 0; i < 25; i++) {
      report.report({
        lease: lease(`02:00:00:00:05:${i.toString(16).padStart(2, '0')}`, `10.0.5.${i + 1}`),
        outcome: 'stale',
        hostId: null,
      });
    }
    assert.equal(logs.filter((l) => l.includes('No live lease in lease4')).length, 10);
  });

  test('latency observed for a reservation that stands, from the commit; subnets confirmed only by lease4 (or the file)', () => {
    const { report, metrics } = reporter();
    const latency = () => metrics.value(M.reservationLatency[0], { source: 'database' });
    report.report({ lease: lease('02:00:00:00:06:01', '10.0.6.1', 1, { committedAt: 1000 }), outcome: 'created', hostId: 1 }, 3000);
    report.report({ lease: lease('02:00:00:00:06:02', '10.0.6.2', 1, { committedAt: 1000 }), outcome: 'foreign', hostId: 1 }, 3000);
    report.report({ lease: lease('02:00:00:00:06:03', '10.0.6.3', 1), outcome: 'unchanged', hostId: 1 }, 3000);
    assert.equal(latency(), 1, 'one observation: created with a commit time');
    // A stale database lease's subnet was never confirmed: it stays out of the subnet labels.
    report.report({ lease: lease('02:00:00:00:06:04', '10.0.6.4', 77), outcome: 'stale', hostId: null });
    assert.equal(metrics.subnets.label(77), 'other', 'stale does not confirm');
    report.report({ lease: lease('02:00:00:00:06:05', '10.0.6.5', 78), outcome: 'foreign', hostId: 3 });
    assert.equal(metrics.subnets.label(78), '78', 'foreign (after lease4) confirms');
  });

  test('--dry-run: counted as decisions, nothing gets a record, reservations_total untouched', () => {
    const { report, metrics, logs } = reporter(true);
    assert.equal(report.report({ lease: lease('02:00:00:00:07:01', '10.0.7.1'), outcome: 'created', hostId: null }), null);
    assert.equal(report.report({ lease: lease('02:00:00:00:07:02', '10.0.7.2'), outcome: 'unchanged', hostId: 4 }), null);
    assert.equal(metrics.value(M.dryRun[0], { action: 'created' }), 1);
    assert.equal(metrics.value(M.dryRun[0], { action: 'unchanged' }), 1);
    assert.equal(metrics.total(M.reservations[0]), 0);
    assert.ok(logs.some((l) => l.includes('[dry run] reservation would be created')));
    assert.ok(logs.some((l) => l.includes('[dry run] would leave: unchanged')));
  });

  test('reservations written: a line each up to 100 a window at info, the rest summed in one line; every one at debug', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const { report, logs, count } = reporter(false, 'info');
    const written = (i: number, outcome: 'created' | 'updated') =>
      report.report({
        lease: lease(`02:00:00:08:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, `10.0.8.1`),
        outcome,
        hostId: i,
      });
    for (let i = 0; i < 240; i++) written(i, 'created');
    for (let i = 240; i < 250; i++) written(i, 'updated');
    const lines = (re: RegExp) => logs.filter((l) => re.test(l));
    assert.equal(lines(/Static reservation created/).length, 100);
    assert.equal(lines(/Static reservation updated/).length, 0);
    assert.equal(count('created'), 240, 'every one counted');
    assert.equal(lines(new RegExp(WRITTEN_UNLOGGED.slice(0, 30))).length, 0, 'the summary waits for the window');
    t.mock.timers.tick(10_000);
    const summary = lines(new RegExp(WRITTEN_UNLOGGED.slice(0, 30)));
    assert.equal(summary.length, 1, 'one summary once the window has passed');
    assert.match(summary[0], /"created":140/);
    assert.match(summary[0], /"updated":10/);
    // A new window: lines again; what is held back at the end is said by flush() (the writer's stop).
    for (let i = 250; i < 360; i++) written(i, 'created');
    assert.equal(lines(/Static reservation created/).length, 200);
    report.flush();
    assert.match(lines(new RegExp(WRITTEN_UNLOGGED.slice(0, 30)))[1] ?? '', /"created":10,/);

    const debug = reporter(false, 'debug');
    for (let i = 0; i < 150; i++)
      debug.report.report({ lease: lease(`02:00:00:09:00:${i.toString(16).padStart(2, '0')}`, '10.0.9.1'), outcome: 'created', hostId: i });
    debug.report.flush();
    assert.equal(debug.logs.filter((l) => l.includes('Static reservation created')).length, 150);
    assert.equal(debug.logs.filter((l) => l.includes('without a line each')).length, 0);
  });
});
