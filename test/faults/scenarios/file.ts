// File-mode faults: SIGKILL with lease-file cleanup while down, a full output directory, a burst of 1,000,000 leases.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { query } from '../../e2e/lib/pg';
import { onCleanup, run, sleep, waitFor } from '../../e2e/lib/proc';
import { fileStem } from '../../helpers/leases';
import { alive, peakRssMiB } from '../lib/monitor';
import { ScenarioSpec } from '../lib/scenario';
import type { FileStream } from '../lib/stream';

export const sigkillFile: ScenarioSpec = {
  name: 'SIGKILL mid-batch, file mode, lease-file cleanup while down',
  mode: 'file',
  rate: 400,
  async fault(ctx) {
    const stream = ctx.stream as FileStream;
    const before = stream.cleanups;
    await ctx.mon.kill9();
    const killedAt = statSync(stream.file);
    await sleep(1000);
    await stream.cleanup();
    await sleep(1500);
    await stream.cleanup();
    // Restart once the new file is longer than the one the saved position was taken in: an offset that
    // still "fits" is what a resume by inode alone trusts wrongly when the inode number was reused.
    await waitFor('lease file regrown', () => statSync(stream.file).size > killedAt.size, 10_000, 50).catch(() => undefined);
    const now = statSync(stream.file);
    const during = stream.cleanups - before;
    ctx.notes.push(`inode ${now.ino === killedAt.ino ? 'reused' : 'not reused'} by the new lease file`);
    ctx.relaunch();
    await sleep(500);
    return { end: Date.now(), tailMs: 3000, checks: [{ ok: during >= 2, what: `${during} cleanups while the monitor was down` }] };
  },
};

/** Every expected lease has its discovery record naming its address, and no temp file is left. */
async function recordsComplete(
  dir: string,
  expected: { mac: string; ip: string }[],
  timeoutMs: number,
): Promise<{ ok: boolean; what: string }> {
  let missing: string[] = [];
  let tmp: string[] = [];
  await waitFor(
    'discovery records',
    () => {
      missing = expected
        .filter((l) => {
          const f = join(dir, `${fileStem(l.mac)}.json`);
          return !existsSync(f) || !readFileSync(f, 'utf8').includes(`"${l.ip}"`);
        })
        .map((l) => l.mac);
      tmp = readdirSync(dir).filter((f) => f.includes('.tmp'));
      return missing.length === 0 && tmp.length === 0;
    },
    timeoutMs,
    500,
  ).catch(() => undefined);
  return {
    ok: missing.length === 0 && tmp.length === 0,
    what: `${missing.length} discovery records missing or stale${missing.length ? ` (${missing.slice(0, 2).join(', ')})` : ''}, ${tmp.length} temp files left`,
  };
}

export const diskFull: ScenarioSpec = {
  name: 'output directory full (64 MiB tmpfs), then freed',
  mode: 'file',
  async setup(_pg, dir) {
    const out = join(dir, 'discovery');
    await run('mkdir', ['-p', out]);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'klm-faults', out]);
    onCleanup(`umount ${out}`, () => run('umount', ['-l', out], { allowFail: true }).then(() => undefined));
  },
  async fault(ctx) {
    const filler = join(ctx.outputDir, 'filler');
    await run('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=100'], { allowFail: true });
    await sleep(15_000);
    const errors = ctx.mon.count(/ENOSPC|no space/i);
    rmSync(filler);
    return { end: Date.now(), tailMs: 2000, checks: [{ ok: errors > 0, what: `${errors} log lines about ENOSPC while full` }] };
  },
  async after(ctx) {
    return [await recordsComplete(ctx.outputDir, ctx.stream.expected(), 30_000)];
  },
};

const BURST = 1_000_000;

export const burst: ScenarioSpec = {
  name: '1,000,000 leases in one burst, file mode (records on ext4)',
  mode: 'file',
  // The million records go to an ext4 file system of their own (a loop-mounted image on the same
  // disk): unmounting it takes seconds, where removing a million files takes minutes.
  async setup(_pg, dir) {
    const out = join(dir, 'discovery');
    const image = join(dir, 'records.ext4');
    await run('mkdir', ['-p', out]);
    await run('truncate', ['-s', '6G', image]);
    await run('mkfs.ext4', ['-q', '-F', '-N', '1200000', image]);
    await run('mount', ['-o', 'loop', image, out]);
    onCleanup(`umount ${out}`, () => run('umount', ['-l', out], { allowFail: true }).then(() => undefined));
  },
  rate: 50,
  warmMs: 1000,
  timeoutMs: 480_000,
  async fault(ctx) {
    const stream = ctx.stream as FileStream;
    await stream.stop();
    const t0 = Date.now();
    const range = stream.burst(BURST);
    const appended = (Date.now() - t0) / 1000;
    // Cheap progress check first; the full comparison runs once everything is in.
    let rss = 0;
    await waitFor(
      'burst reserved',
      async () => {
        if (alive(ctx.mon)) rss = Math.max(rss, peakRssMiB(ctx.mon.proc.pid!));
        const n = Number((await query<{ n: string }>(ctx.pg, 'SELECT count(*) AS n FROM hosts'))[0].n);
        return n >= stream.current.size + BURST || !alive(ctx.mon);
      },
      470_000,
      2000,
    ).catch(() => undefined);
    if (alive(ctx.mon)) rss = Math.max(rss, peakRssMiB(ctx.mon.proc.pid!));
    const took = (Date.now() - t0) / 1000;
    return {
      end: t0,
      range,
      checks: [
        { ok: rss > 0 && rss < 150, what: `peak RSS ${rss.toFixed(0)} MiB (target < 150 MiB)` },
        {
          ok: true,
          what: `appended in ${appended.toFixed(1)} s, all reserved ${took.toFixed(0)} s after the burst began (${Math.round(BURST / took)}/s)`,
        },
      ],
    };
  },
};
