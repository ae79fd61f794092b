// The file system's own limit: a bare loop creating N discovery-sized files (temp file + rename, the monitor's
// way) in a fresh directory, in a child process under the pinned Node, timed and charged by that child itself
// (process.cpuUsage around the loop only, so Node's start-up is not counted).
import { join } from 'node:path';
import { run } from '../../test/e2e/lib/proc';
import { PINNED_NODE } from './sut';

// A record as src/discovery.ts writes it (pretty-printed, newline), with the longest hostname the benchmarks use.
export const SAMPLE_RECORD =
  JSON.stringify(
    {
      mac: '02:00:00:00:00:01',
      ip: '10.100.0.1',
      hostname: 'bench-00000001',
      subnet_id: 1,
      first_seen: '2026-11-27T12:00:00.000Z',
      last_seen: '2026-11-27T12:00:00.000Z',
      source: 'database',
      reservation: 'created',
      host_id: 1000000,
    },
    null,
    2,
  ) + '\n';

const LOOP = `
const fs = require("node:fs"), path = require("node:path");
const [dir, n, text] = [process.argv[1], Number(process.argv[2]), process.argv[3]];
const t0 = performance.now(), c0 = process.cpuUsage();
for (let i = 0; i < n; i++) {
  const stem = "02-00-" + i.toString(16).padStart(8, "0").match(/../g).join("-");
  const tmp = path.join(dir, "." + stem + ".json." + process.pid + "." + i + ".tmp");
  const fd = fs.openSync(tmp, "wx", 0o644);
  fs.writeSync(fd, text);
  fs.closeSync(fd);
  fs.renameSync(tmp, path.join(dir, stem + ".json"));
}
const c = process.cpuUsage(c0);
process.stdout.write(JSON.stringify({ ms: performance.now() - t0, cpu: (c.user + c.system) / 1e6 }));
`;

export interface FsLoop {
  /** Wall time of the loop. */
  ms: number;
  /** utime + stime of the loop, seconds. */
  cpu: number;
  /** Files created per second. */
  rate: number;
}

/** Creates n files in dir (which must exist and be empty). */
export async function fsLoop(dir: string, n: number): Promise<FsLoop> {
  const r = await run(PINNED_NODE, ['-e', LOOP, join(dir), String(n), SAMPLE_RECORD]);
  const { ms, cpu } = JSON.parse(r.stdout) as { ms: number; cpu: number };
  return { ms, cpu, rate: n / (ms / 1000) };
}
