// Programs from a cached Debian root (test/lib/kea-rootfs.sh), run chrooted inside a test network
// namespace with a private mount namespace: per-run directories are bind-mounted over the root's
// /run/kea, /var/lib/kea, ... so concurrent runs never share a path inside the cached root.
import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../lib/pg';
import { run, RunResult } from '../lib/proc';

/** Builds (once, cached) or finds the Debian root for a suite and returns its path. */
export async function debianRoot(suite: 'forky' | 'trixie'): Promise<string> {
  const r = await run(join(ROOT, 'test/lib/kea-rootfs.sh'), [suite]);
  return r.stdout.trim().split('\n').pop()!;
}

/** host directory -> path inside the root */
export type Binds = Record<string, string>;

const LAUNCH = `set -e
root=$1; shift
while [ "$1" != "--" ]; do
  mkdir -p "$root$2"; mount --bind "$1" "$root$2"; shift 2
done
shift
mount --bind /dev "$root/dev"
mount -t proc proc "$root/proc"
exec chroot "$root" "$@"
`;

function launchArgs(root: string, ns: string, binds: Binds, cmd: string[]): string[] {
  const b = Object.entries(binds).flatMap(([host, inside]) => [host, inside]);
  return ['netns', 'exec', ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', LAUNCH, 'launch', root, ...b, '--', ...cmd];
}

/** Runs a command to completion inside the root. */
export function runInRoot(root: string, ns: string, binds: Binds, cmd: string[], input?: string): Promise<RunResult> {
  return run('ip', launchArgs(root, ns, binds, cmd), input === undefined ? {} : { input });
}

/** Starts a long-running command inside the root, output appended to logFile. */
export function spawnInRoot(
  root: string,
  ns: string,
  binds: Binds,
  cmd: string[],
  logFile: string,
  env: Record<string, string> = {},
): ChildProcess {
  const out = openSync(logFile, 'a');
  return spawn('ip', launchArgs(root, ns, binds, cmd), { stdio: ['ignore', out, out], env: { ...process.env, ...env } });
}

/** A directory Kea 3.0 accepts as /run/kea or /var/lib/kea (no access for others). */
export function keaDir(path: string): string {
  mkdirSync(path, { recursive: true });
  chmodSync(path, 0o750);
  return path;
}

export function writeJson(path: string, v: unknown): void {
  writeFileSync(path, JSON.stringify(v, null, 2));
}
