// Percentiles, median/min/max over runs, and /proc sampling of a process.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dropCachedPages } from './page-cache';

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export interface Agg {
  median: number;
  min: number;
  max: number;
  n: number;
}
export function agg(xs: number[]): Agg {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: mid, min: s[0], max: s[s.length - 1], n: s.length };
}

const CLK_TCK = 100; // getconf CLK_TCK on Linux x86_64/arm64

export function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK; // utime + stime
  } catch {
    return NaN;
  }
}

/** VmRSS, its high-water mark, and RssAnon: the heap and stacks, without the binary's file-backed pages. */
export function rssMb(pid: number): { rss: number; hwm: number; anon: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024, anon: kb('RssAnon') / 1024 };
  } catch {
    return { rss: NaN, hwm: NaN, anon: NaN };
  }
}

/** Samples RSS every ms until stopped; steady = median of the second half of the samples. */
export function sampleRss(pid: number, ms = 100): { stop(): { peak: number; steady: number; peakAnon: number } } {
  const xs: number[] = [];
  let hwm = 0;
  let peakAnon = NaN;
  const t = setInterval(() => {
    const r = rssMb(pid);
    if (Number.isFinite(r.rss)) xs.push(r.rss);
    if (Number.isFinite(r.hwm)) hwm = Math.max(hwm, r.hwm);
    if (Number.isFinite(r.anon)) peakAnon = Number.isFinite(peakAnon) ? Math.max(peakAnon, r.anon) : r.anon;
  }, ms);
  return {
    stop() {
      clearInterval(t);
      return { peak: Math.max(hwm, ...xs), steady: agg(xs.slice(Math.floor(xs.length / 2))).median, peakAnon };
    },
  };
}

/**
 * CPU used by processes that are not part of this benchmark (neither this process nor a descendant of it, nor a
 * process whose command line names our temp dir, as the daemonised postmasters do), sampled once a second.
 * Short-lived processes between samples are missed, so this is a lower bound.
 */
export function foreignCpu(marker: string): { stop(): { foreign: number; wall: number } } {
  const self = process.pid;
  const last = new Map<number, number>();
  const cmd = new Map<number, string>();
  let foreign = 0;
  const t0 = Date.now();
  const read = () => {
    const procs = new Map<number, { ppid: number; cpu: number }>();
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const f = readFileSync(`/proc/${d}/stat`, 'utf8');
        const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
        procs.set(Number(d), { ppid: Number(rest[1]), cpu: (Number(rest[11]) + Number(rest[12])) / CLK_TCK });
      } catch {
        /* exited */
      }
    }
    const ours = (pid: number): boolean => {
      for (let p = pid, i = 0; p > 1 && i < 64; i++) {
        if (p === self) return true;
        if (!cmd.has(p)) {
          try {
            cmd.set(p, readFileSync(`/proc/${p}/cmdline`, 'utf8'));
          } catch {
            cmd.set(p, '');
          }
        }
        if (cmd.get(p)!.includes(marker)) return true;
        p = procs.get(p)?.ppid ?? 0;
      }
      return false;
    };
    for (const [pid, p] of procs) {
      const prev = last.get(pid);
      if (prev !== undefined && !ours(pid)) foreign += p.cpu - prev;
      last.set(pid, p.cpu);
    }
  };
  read();
  const t = setInterval(read, 1000);
  return {
    stop() {
      clearInterval(t);
      read();
      return { foreign, wall: (Date.now() - t0) / 1000 };
    },
  };
}

/**
 * Peak RSS of `bin --version` under GNU time, in MB: what the binary costs before it does anything
 * (its runtime's own pages), from a dropped cache as the unit starts it: otherwise it follows how the page cache
 * holds the file (65 against 88 MB after a sequential read of it, kernel 6.18).
 */
export function versionFloorMb(bin: string): number {
  dropCachedPages(bin);
  const r = spawnSync('/usr/bin/time', ['-f', '%M', bin, '--version'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  if (r.status !== 0) throw new Error(`${bin} --version exited ${r.status}: ${r.stderr.trim()}`);
  const lines = r.stderr.trim().split('\n');
  return Number(lines[lines.length - 1]) / 1024;
}
