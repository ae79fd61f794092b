// Rebuilds RELIABILITY.md from a `make faults` console log, for a run cut short before it wrote the report.
// Usage: node --import tsx test/faults/from-log.ts LOG [SECONDS]
import { readFileSync } from 'node:fs';
import { record, writeReport } from './lib/report';

const [log, secs] = [process.argv[2], Number(process.argv[3] ?? 0)];
const re = /^(ok {2}|FAIL) (.+?): (\d+) leases, (\d+) lost, (\d+) doubled, recovery (n\/a|[\d.]+) s(?: \((.*)\))?$/;
const names: string[] = [];
for (const line of readFileSync(log, 'utf8').replace(/\0/g, '').split('\n')) {
  const h = /^---- (.+)$/.exec(line);
  if (h) names.push(h[1]);
  const m = re.exec(line);
  if (!m) continue;
  record({
    name: m[2],
    leases: Number(m[3]),
    lost: Number(m[4]),
    doubled: Number(m[5]),
    recovery: m[6] === 'n/a' ? null : Number(m[6]),
    notes: m[7] ?? '',
    pass: m[1] === 'ok  ',
  });
}
const done = new Set<string>();
for (const line of readFileSync(log, 'utf8').split('\n')) {
  const m = re.exec(line);
  if (m) done.add(m[2]);
}
for (const n of names)
  if (!done.has(n))
    record({
      name: n,
      leases: 0,
      lost: 0,
      doubled: 0,
      recovery: null,
      notes: 'cut short: the run was stopped before this scenario finished',
      pass: false,
    });
writeReport(new Date(), secs, false);
