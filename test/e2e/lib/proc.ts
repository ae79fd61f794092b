// Process and cleanup helpers shared by the e2e suite and the benchmarks.
import { spawn, ChildProcess, SpawnOptions } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Cleanup = { name: string; fn: () => Promise<void> | void };
const cleanups: Cleanup[] = [];
let cleaning = false;

/** Registers an undo step; steps run last-in first-out by runCleanups(). */
export function onCleanup(name: string, fn: () => Promise<void> | void): () => void {
  const c = { name, fn };
  cleanups.push(c);
  return () => {
    const i = cleanups.indexOf(c);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

/** A mark for runCleanups(mark): undo only what was registered after it. */
export const cleanupMark = (): number => cleanups.length;

export async function runCleanups(downTo = 0): Promise<void> {
  if (cleaning) return;
  cleaning = true;
  while (cleanups.length > downTo) {
    const c = cleanups.pop()!;
    try {
      await c.fn();
    } catch (e) {
      process.stderr.write(`cleanup ${c.name} failed: ${(e as Error).message}\n`);
    }
  }
  cleaning = false;
}

// Ctrl-C or a CI timeout must still remove namespaces, Kea and PostgreSQL.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\n${sig}: cleaning up\n`);
    void runCleanups().finally(() => process.exit(130));
  });
}

export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(d, 0o755); // the postgres user must reach the cluster directory inside it
  onCleanup(`rm ${d}`, () => rmSync(d, { recursive: true, force: true }));
  return d;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, capturing output. Rejects on non-zero exit unless allowFail. */
export function run(cmd: string, args: string[], opts: SpawnOptions & { allowFail?: boolean; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0 && !opts.allowFail) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim() || stdout.trim()}`));
      else resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) p.stdin.end(opts.input);
    else p.stdin.end();
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function now(): number {
  // Wall clock with sub-millisecond resolution; comparable across processes and with PostgreSQL's clock.
  return performance.timeOrigin + performance.now();
}

/** Waits for a child to exit, up to ms; resolves true when it exited. */
export function waitExit(p: ChildProcess, ms: number): Promise<boolean> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    p.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

export async function stopChild(p: ChildProcess, ms = 5000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  if (!(await waitExit(p, ms))) {
    p.kill('SIGKILL');
    await waitExit(p, 2000);
  }
}

export { waitFor } from '../../helpers/wait';
