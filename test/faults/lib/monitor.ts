// The built binary under test, started the way an operator would, with its log captured.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { Monitor, MONITOR_BIN, startProcess } from '../../e2e/lib/monitor';
import { Pg, pgEnv } from '../../e2e/lib/pg';
import { DB_PASSWORD } from './cluster';

export { MONITOR_BIN };
export type { Monitor };

/** Flags every scenario passes on top of the defaults: shorter backoff cap and heartbeat, so a run stays short. */
export const SUITE_FLAGS = ['--reconnect-max-delay', '5', '--heartbeat-interval', '5'];

export interface Launch {
  pg: Pg;
  mode: 'db' | 'file';
  outputDir: string;
  leaseFile?: string;
  args?: string[];
  env?: Record<string, string>;
  /** Run inside this network namespace (ip netns exec). */
  netns?: string;
  /** Connect over TCP (scram, password from KEA_DB_PASSWORD) instead of the unix socket. */
  tcp?: { host: string; port: number };
  user?: string;
  /** Serve /metrics here (default 0: no listener). */
  metricsPort?: number;
  logLevel?: 'info' | 'debug';
}

export function launch(o: Launch): Monitor {
  if (!existsSync(MONITOR_BIN)) throw new Error(`${MONITOR_BIN} missing: run make build`);
  mkdirSync(o.outputDir, { recursive: true });
  const args = [
    'run',
    '--output-dir',
    o.outputDir,
    '--log-format',
    'json',
    '--log-level',
    o.logLevel ?? 'info',
    '--metrics-port',
    String(o.metricsPort ?? 0),
    ...SUITE_FLAGS,
  ];
  if (o.mode === 'db') args.push('--use-database-events');
  else args.push('--lease-file', o.leaseFile!);
  args.push(...(o.args ?? []));
  const env: NodeJS.ProcessEnv = { ...process.env, ...pgEnv(o.pg), KEA_DB_PASSWORD: DB_PASSWORD, NODE_OPTIONS: '', ...o.env };
  if (o.tcp) {
    env.KEA_LM_DB_HOST = o.tcp.host;
    env.KEA_LM_DB_PORT = String(o.tcp.port);
  }
  if (o.user) env.KEA_LM_DB_USER = o.user;
  if (o.netns) return startProcess('ip', ['netns', 'exec', o.netns, MONITOR_BIN, ...args], env);
  return startProcess(MONITOR_BIN, args, env);
}

/** Peak resident set size of a live process, in MiB (VmHWM). */
export function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export function alive(m: Monitor): boolean {
  return m.proc.exitCode === null && m.proc.signalCode === null;
}

/** The last lines of a monitor's log, for a FAIL note. */
export function tail(m: Monitor, n = 3): string {
  return m.lines
    .slice(-n)
    .map((l) => {
      try {
        const j = JSON.parse(l) as { level?: string; message?: string; error?: string };
        return `${j.level}: ${j.message}${j.error ? ` (${j.error})` : ''}`;
      } catch {
        return l;
      }
    })
    .join(' | ')
    .slice(0, 300);
}
