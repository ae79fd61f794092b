// Collects figures (each a list of per-run values) and renders the table for the terminal and BENCHMARKS.md.
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { agg } from './stats';

export interface Row {
  group: string;
  metric: string;
  unit: string;
  runs: number[];
  target?: string;
  met?: boolean;
  note?: string;
}
export const rows: Row[] = [];
export const notes: string[] = [];
/** Extra markdown sections (e.g. the CPU profile table), written after the main table. */
export const sections: string[] = [];

export function add(r: Row): Row {
  rows.push(r);
  const a = agg(r.runs);
  process.stdout.write(
    `  ${r.group} | ${r.metric}: ${fmt(a.median)} ${r.unit} (min ${fmt(a.min)}, max ${fmt(a.max)}, n=${a.n})${r.target ? ` target ${r.target}: ${r.met ? 'met' : 'MISSED'}` : ''}\n`,
  );
  return r;
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  const ax = Math.abs(x);
  if (ax >= 1000) return Math.round(x).toLocaleString('en-US');
  if (ax >= 100) return x.toFixed(0);
  if (ax >= 10) return x.toFixed(1);
  if (ax > 0 && ax < 0.1) return x.toPrecision(2); // e.g. statements per reservation when batched
  return x.toFixed(2);
}

function sh(cmd: string): string {
  try {
    return execSync(cmd, { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return '?';
  }
}

export function machine(): string[] {
  const c = cpus();
  return [
    `- CPU: ${c.length} x ${c[0]?.model ?? '?'}`,
    `- Memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB; kernel ${release()}; Debian ${sh('cat /etc/debian_version')}`,
    `- ${sh('/usr/lib/postgresql/15/bin/postgres --version')} (durable: fsync on, synchronous_commit on); Kea ${sh('kea-dhcp4 -v')}; Node ${process.version}`,
    `- Git: ${sh('git rev-parse --short HEAD')}${sh('git status --porcelain -- src migrations scripts') ? ' (src has uncommitted changes)' : ''}`,
  ];
}

export function markdown(command: string, started: Date, seconds: number): string {
  const out: string[] = [];
  out.push('# Benchmarks', '');
  out.push(`Written by \`make bench\` (bench/run.ts); do not edit by hand. Method and caveats: bench/README.md.`, '');
  out.push(`- Date: ${started.toISOString()} (took ${Math.round(seconds)} s)`);
  out.push(`- Command: \`${command}\``);
  out.push(...machine(), '');
  out.push('Each figure is the median of the runs, with min and max. Latencies in ms, from the lease commit (synthetic database');
  out.push('mode: clock_timestamp() in the inserting transaction just before COMMIT; file mode: just before the CSV write;');
  out.push("real Kea: clock_timestamp() inside Kea's own INSERT, or the CSV row becoming readable) to the discovery file being");
  out.push('renamed into place (inotify). PostgreSQL is durable (fsync on) throughout. The minimal listener, bare file');
  out.push('creation and raw upsert rows are the physical limits, measured in the same run on the same kind of directory.');
  out.push('Method: bench/README.md.', '');
  let group = '';
  out.push('| Benchmark | Metric | Median | Min | Max | Runs | Target |', '|---|---|---:|---:|---:|---:|---|');
  const num = (g: string) => Number(/^(\d+)\./.exec(g)?.[1] ?? 99);
  for (const r of [...rows].sort((x, y) => num(x.group) - num(y.group))) {
    const a = agg(r.runs);
    const target = r.target ? `${r.target}: ${r.met ? 'met' : '**missed**'}` : '';
    out.push(
      `| ${r.group === group ? '' : r.group} | ${r.metric}${r.unit ? ` (${r.unit})` : ''}${r.note ? ` ${r.note}` : ''} | ${fmt(a.median)} | ${fmt(a.min)} | ${fmt(a.max)} | ${a.n} | ${target} |`,
    );
    group = r.group;
  }
  for (const sct of sections) out.push('', sct);
  if (notes.length) out.push('', '## Notes', '', ...notes.map((n) => `- ${n}`));
  out.push('');
  return out.join('\n');
}

export const readText = (f: string) => readFileSync(f, 'utf8');
