// Cost of one reservation log line through createLogger(), per format and per kind of stderr.
// Usage: node --import tsx bench/log-cost.ts [--lines 100000] [--runs 3]
// Each case runs in its own child process (stderr redirected there), so JIT state and buffers do not
// carry over. The original logger (bench/lib/logger-original.ts) runs alternately with the current one,
// so both are measured under the same load on a shared machine. Printed: µs per line, median of the runs with min-max; "call" is the time spent inside
// the log calls, "wall" adds the flush at the end, "cpu" is process.cpuUsage() (user+system) over both.
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from './lib/args';

const WARMUP = 10_000;
/** Set by the parent for its measuring children only: "impl format lines". */
const CHILD_ENV = 'KLM_LOG_COST_CHILD';

type Result = { callUs: number; wallUs: number; cpuUs: number; lines: number };

/** The measuring child: logs WARMUP lines, then `lines` lines, then flushes; prints one JSON result on stdout. */
async function child(impl: Impl, format: 'text' | 'json', lines: number): Promise<void> {
  // Loaded here so the parent process does not pay for winston.
  const { createLogger, flushLogger } = impl === 'current' ? await import('../src/logger') : await import('./lib/logger-original');
  const root = createLogger('info', format);
  const log = root.child({ module: 'writer' });
  const line = (i: number): void => {
    const b = i & 0xff;
    log.info('Static reservation created', {
      mac: `0c:c4:7a:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${b.toString(16).padStart(2, '0')}`,
      ip: `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${b}`,
      hostname: `bmc-rack${i % 40}-u${i % 48}`,
      subnet_id: 3,
      host_id: 1000 + i,
    });
  };
  for (let i = 0; i < WARMUP; i++) line(i);
  // Let the warm-up lines drain before measuring.
  await new Promise((r) => setTimeout(r, 50));
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < lines; i++) line(WARMUP + i);
  const t1 = process.hrtime.bigint();
  await flushLogger(root);
  const t2 = process.hrtime.bigint();
  const cpu = process.cpuUsage(cpu0);
  const r: Result = {
    callUs: Number(t1 - t0) / 1000 / lines,
    wallUs: Number(t2 - t0) / 1000 / lines,
    cpuUs: (cpu.user + cpu.system) / lines,
    lines,
  };
  process.stdout.write(JSON.stringify(r) + '\n');
}

type Sink = 'file' | '/dev/null' | 'pipe';
type Impl = 'current' | 'original';

/** Runs one case in a child with stderr on the given sink; returns its result and the bytes written. */
function runCase(impl: Impl, format: 'text' | 'json', sink: Sink, dir: string, lines: number): Promise<Result & { bytes: number }> {
  const file = join(dir, `${format}.log`);
  const fd = sink === 'file' ? openSync(file, 'w') : sink === '/dev/null' ? openSync('/dev/null', 'w') : null;
  const p = spawn(process.execPath, [...process.execArgv, __filename], {
    stdio: ['ignore', 'pipe', fd ?? 'pipe'],
    env: { ...process.env, [CHILD_ENV]: `${impl} ${format} ${lines}` },
  });
  if (fd !== null) closeSync(fd);
  let out = '';
  let piped = 0;
  p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr?.on('data', (d: Buffer) => (piped += d.length));
  return new Promise((resolve, reject) => {
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${format} ${sink}: child exited ${code}: ${out}`));
      const bytes = sink === 'file' ? statSync(file).size : sink === 'pipe' ? piped : 0;
      resolve({ ...(JSON.parse(out) as Result), bytes });
    });
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs: number[]): string => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;

async function parent(lines: number, runs: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'klm-log-cost-'));
  try {
    console.log(`${lines} reservation lines per case after ${WARMUP} warm-up lines, ${runs} runs, node ${process.version}`);
    console.log('µs per line: median (min-max)');
    console.log('| logger | format | stderr | call | wall (call + flush) | cpu (user+sys) | bytes/line |');
    console.log('|---|---|---|---|---|---|---|');
    for (const format of ['text', 'json'] as const) {
      for (const sink of ['file', '/dev/null', 'pipe'] as const) {
        const rs: Record<Impl, (Result & { bytes: number })[]> = { original: [], current: [] };
        for (let i = 0; i < runs; i++) {
          for (const impl of ['original', 'current'] as const) rs[impl].push(await runCase(impl, format, sink, dir, lines));
        }
        for (const impl of ['original', 'current'] as const) {
          const r = rs[impl];
          const bytes = r[0].bytes > 0 ? (r[0].bytes / (lines + WARMUP)).toFixed(0) : '-';
          console.log(
            `| ${impl} | ${format} | ${sink} | ${fmt(r.map((x) => x.callUs))} | ${fmt(r.map((x) => x.wallUs))} | ${fmt(r.map((x) => x.cpuUs))} | ${bytes} |`,
          );
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const childCase = process.env[CHILD_ENV];
if (childCase) {
  const [impl, format, lines] = childCase.split(' ');
  child(impl as Impl, format as 'text' | 'json', Number(lines)).catch((err: unknown) => {
    process.stdout.write(String(err) + '\n');
    process.exit(1);
  });
} else {
  const args = benchArgs(
    'bench/log-cost.ts',
    'Cost of one reservation log line, per format and kind of stderr, beside the original logger.',
    {
      lines: { type: 'string', count: true, help: 'log lines per case after the warm-up (default 100000)' },
      runs: { type: 'string', count: true, help: 'runs per case, the loggers alternating (default 3)' },
    },
  );
  parent(Number(args.lines ?? '100000'), Number(args.runs ?? '3')).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
