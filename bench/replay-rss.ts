// Peak RSS of the built binary replaying a large lease file on first start (issue 7, defect 8).
//   node --import tsx bench/replay-rss.ts [--leases 1000000] [--limit-mb 150]     (or: make replay-rss)
// Exits 1 when the peak is over the limit. The fault suite imports measureReplayRss().
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestCluster, dbFlags } from '../test/helpers/pg';
import { benchArgs } from './lib/args';
import { CSV_HEADER } from '../test/helpers/leases';

export interface ReplayRss {
  leases: number;
  fileMb: number;
  /** VmHWM of the monitor process: its peak resident set. */
  peakRssMb: number;
  /** Seconds from start until the saved position reached the end of the file (every lease written). */
  seconds: number;
  reservations: number;
}

export interface ReplayRssOptions {
  leases: number;
  bin?: string;
  /** Progress lines. */
  log?: (line: string) => void;
  timeoutMs?: number;
}

const ROOT = join(__dirname, '..');

/** `n` distinct live leases in 10.0.0.0/8 (all leasable), one row each, written in large blocks. */
export function writeLeaseFile(file: string, n: number): void {
  const fd = openSync(file, 'w');
  const expire = Math.floor(Date.now() / 1000) + 86_400;
  const hex = (b: number) => b.toString(16).padStart(2, '0');
  try {
    writeSync(fd, CSV_HEADER + '\n');
    const block: string[] = [];
    for (let i = 0; i < n; i++) {
      const a = 0x0a000001 + i;
      const ip = `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
      const mac = `02:00:${hex((i >>> 24) & 255)}:${hex((i >>> 16) & 255)}:${hex((i >>> 8) & 255)}:${hex(i & 255)}`;
      block.push(`${ip},${mac},,86400,${expire},1,0,0,node-${i},0,\n`);
      if (block.length === 50_000) writeSync(fd, block.splice(0).join(''));
    }
    if (block.length) writeSync(fd, block.join(''));
  } finally {
    closeSync(fd);
  }
}

function vm(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Throwaway PostgreSQL with the Kea schema, the binary in file mode on a fresh lease file, its peak RSS. */
export async function measureReplayRss(o: ReplayRssOptions): Promise<ReplayRss> {
  const log = o.log ?? (() => undefined);
  const bin = o.bin ?? process.env.KEA_LM_BIN ?? join(ROOT, 'dist', 'kea-lease-monitor');
  if (!existsSync(bin)) throw new Error(`${bin} missing: make build`);
  // The lease file on tmpfs when there is one (fast to write and to read); the records on disk (a million files).
  const leaseDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'klm-rss-'));
  const outDir = mkdtempSync(join(tmpdir(), 'klm-rss-out-'));
  const cluster = TestCluster.start();
  try {
    const file = join(leaseDir, 'kea-leases4.csv');
    let t = Date.now();
    writeLeaseFile(file, o.leases);
    const size = statSync(file).size;
    log(`wrote ${o.leases} leases (${(size / 2 ** 20).toFixed(0)} MiB) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const db = await cluster.freshDatabase();
    const state = join(outDir, '.memfile-position.json');
    const child = spawn(
      bin,
      ['run', '--lease-file', file, '--output-dir', outDir, '--state-file', state, ...dbFlags(db), '--log-level', 'warn'],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: process.env.RSS_NODE_OPTIONS ?? '' } },
    );
    // Interrupted: leave no monitor, cluster or files behind.
    const interrupted = () => {
      child.kill('SIGKILL');
      cluster.stop();
      rmSync(leaseDir, { recursive: true, force: true });
      rmSync(outDir, { recursive: true, force: true });
      process.exit(130);
    };
    process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    t = Date.now();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let hwm = 0;
    const deadline = Date.now() + (o.timeoutMs ?? 30 * 60_000);
    let lastLog = Date.now();
    try {
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`monitor exited early: ${stderr.trim().slice(-500)}`);
        hwm = Math.max(hwm, vm(child.pid as number, 'VmHWM'));
        let offset = -1;
        try {
          offset = (JSON.parse(readFileSync(state, 'utf8')) as { offset: number }).offset;
        } catch {
          // not saved yet
        }
        if (offset === size) break;
        if (Date.now() > deadline) throw new Error('timed out waiting for the replay to finish');
        if (Date.now() - lastLog > 15_000) {
          lastLog = Date.now();
          log(
            `… ${((Date.now() - t) / 1000).toFixed(0)} s, RSS ${vm(child.pid as number, 'VmRSS').toFixed(0)} MB, peak ${hwm.toFixed(0)} MB`,
          );
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      hwm = Math.max(hwm, vm(child.pid as number, 'VmHWM'));
    } finally {
      child.kill('SIGTERM');
      await exited;
      process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
    }
    const seconds = (Date.now() - t) / 1000;
    const [{ n }] = await cluster.sql<{ n: string }>(db.database, 'SELECT count(*) AS n FROM hosts');
    return { leases: o.leases, fileMb: size / 2 ** 20, peakRssMb: hwm, seconds, reservations: Number(n) };
  } finally {
    cluster.stop();
    rmSync(leaseDir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const args = benchArgs(
    'bench/replay-rss.ts',
    'Peak RSS of the built binary replaying a large lease file on first start; exit 1 over the limit.',
    {
      leases: { type: 'string', count: true, help: 'leases in the file (default 1000000)' },
      'limit-mb': { type: 'string', count: true, help: 'the most peak RSS that passes, in MB (default 150)' },
    },
  );
  const leases = Number(args.leases ?? '1000000');
  const limit = Number(args['limit-mb'] ?? '150');
  measureReplayRss({ leases, log: (l) => process.stdout.write(`  ${l}\n`) }).then(
    (r) => {
      const ok = r.peakRssMb < limit && r.reservations === r.leases;
      process.stdout.write(
        `replay of ${r.leases} leases (${r.fileMb.toFixed(0)} MiB file): peak RSS ${r.peakRssMb.toFixed(1)} MB (VmHWM; limit ${limit} MB), ` +
          `${r.reservations} reservations in ${r.seconds.toFixed(0)} s: ${ok ? 'PASS' : 'FAIL'}\n`,
      );
      process.exit(ok ? 0 : 1);
    },
    (err: unknown) => {
      process.stdout.write(`replay-rss failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
