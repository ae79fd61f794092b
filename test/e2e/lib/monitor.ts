// The built monitor (dist/kea-lease-monitor, or $KEA_LM_BIN) as a child process with its log captured.
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { WRITTEN_UNLOGGED } from '../../../src/pipeline/outcome-report';
import { Pg, pgEnv, ROOT } from './pg';
import { now, onCleanup, run, stopChild, waitFor } from './proc';

export const MONITOR_BIN = process.env.KEA_LM_BIN ?? join(ROOT, 'dist', 'kea-lease-monitor');

export interface MonitorOpts {
  pg: Pg;
  mode: 'db' | 'file';
  outputDir: string;
  leaseFile?: string;
  stateFile?: string;
  subnetIds?: number[];
  logLevel?: string;
  extraEnv?: Record<string, string>;
}

export interface Monitor {
  proc: ChildProcess;
  startedAt: number;
  lines: string[];
  /** Wall-clock time at which a line matching re was read, or undefined. */
  seen(re: RegExp): number | undefined;
  waitLog(re: RegExp, ms: number): Promise<number>;
  count(re: RegExp): number;
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

export async function migrate(pg: Pg, notify: boolean): Promise<string> {
  const args = ['db', 'migrate', '--json'];
  if (notify) args.push('--notify');
  const r = await run(MONITOR_BIN, args, { env: { ...process.env, ...pgEnv(pg), NODE_OPTIONS: '' } });
  return r.stdout;
}

export function startMonitor(o: MonitorOpts): Monitor {
  if (!existsSync(MONITOR_BIN)) throw new Error(`${MONITOR_BIN} missing: run make build`);
  mkdirSync(o.outputDir, { recursive: true });
  const args = ['run', '--output-dir', o.outputDir, '--log-format', 'json', '--log-level', o.logLevel ?? 'info', '--metrics-port', '0'];
  if (o.mode === 'db') args.push('--use-database-events');
  else args.push('--lease-file', o.leaseFile!);
  if (o.stateFile) args.push('--state-file', o.stateFile);
  for (const s of o.subnetIds ?? []) args.push('--subnet-id', String(s));
  return startProcess(MONITOR_BIN, args, { ...process.env, ...pgEnv(o.pg), NODE_OPTIONS: '', ...o.extraEnv });
}

/** Any long-running child with its stdout+stderr lines captured and time-stamped. */
export function startProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv): Monitor {
  const startedAt = now();
  const proc = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const undo = onCleanup(cmd, () => stopChild(proc));
  const lines: string[] = [];
  const times: number[] = [];
  const waiters: { re: RegExp; resolve: (t: number) => void }[] = [];
  for (const stream of [proc.stdout, proc.stderr]) {
    let partial = '';
    stream.on('data', (d: Buffer) => {
      const t = now();
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop()!;
      for (const l of parts) {
        lines.push(l);
        times.push(t);
        for (const w of [...waiters])
          if (w.re.test(l)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(t);
          }
      }
    });
  }
  const m: Monitor = {
    proc,
    startedAt,
    lines,
    seen(re) {
      const i = lines.findIndex((l) => re.test(l));
      return i < 0 ? undefined : times[i];
    },
    waitLog(re, ms) {
      const t = m.seen(re);
      if (t !== undefined) return Promise.resolve(t);
      return new Promise((resolve, reject) => {
        const w = {
          re,
          resolve: (x: number) => {
            clearTimeout(to);
            resolve(x);
          },
        };
        const to = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`monitor did not log ${re} within ${ms} ms; last lines:\n${lines.slice(-8).join('\n')}`));
        }, ms);
        waiters.push(w);
        proc.once('exit', (code, sig) => {
          clearTimeout(to);
          reject(new Error(`monitor exited (${code ?? sig}) before logging ${re}; last lines:\n${lines.slice(-8).join('\n')}`));
        });
      });
    },
    count(re) {
      return lines.filter((l) => re.test(l)).length;
    },
    async stop() {
      await stopChild(proc, 10000);
      undo();
      return proc.exitCode;
    },
    async kill9() {
      proc.kill('SIGKILL');
      await waitFor('monitor exit', () => proc.exitCode !== null || proc.signalCode !== null, 5000, 20);
      undo();
    },
  };
  return m;
}

export const LISTENING = /Listening for database lease events/;
export const CREATED = /Static reservation created/;

/** Reservations the monitor said it created: a line each, plus those its log budget summed (JSON log lines). */
export function createdSaid(m: Monitor): number {
  let n = m.count(CREATED);
  for (const l of m.lines) {
    if (!l.includes(WRITTEN_UNLOGGED)) continue;
    const o = JSON.parse(l) as { message?: string; created?: number };
    if (o.message === WRITTEN_UNLOGGED) n += o.created ?? 0;
  }
  return n;
}
