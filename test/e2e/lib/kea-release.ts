// The Kea releases the suites run: 2.2.0 from this machine (Debian 12), 2.6.3 and 3.0.4 from cached
// debootstrapped roots (test/lib/kea-rootfs.sh trixie|forky), run chrooted.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './proc';

export const KEA_RELEASES = ['2.2.0', '2.6.3', '3.0.4'] as const;
export type KeaRelease = (typeof KEA_RELEASES)[number];

export interface ReleaseInfo {
  release: KeaRelease;
  suite: 'bookworm' | 'trixie' | 'forky';
  /** Root directory kea-dhcp4 runs chrooted in; null: this machine's own Kea. */
  root: string | null;
  /** Hook directory as Kea sees it (inside the root). */
  hooksDir: string;
  /** Kea >= 2.7.4: the PostgreSQL and MySQL backends are hooks (libdhcp_pgsql.so, libdhcp_mysql.so). */
  backendHooks: boolean;
  /** Kea >= 2.7.9: lease files only under /var/lib/kea, control sockets only under /run/kea, logs under /var/log/kea. */
  restrictedPaths: boolean;
  /** Kea's dhcpdb_create.pgsql for this release, as a path on this machine. */
  schemaFile: string;
  /** "major.minor" from that file, e.g. "22.2". */
  schemaVersion: string;
}

const ROOTFS = join(__dirname, '..', '..', 'lib', 'kea-rootfs.sh');
const SUITE: Record<KeaRelease, ReleaseInfo['suite']> = { '2.2.0': 'bookworm', '2.6.3': 'trixie', '3.0.4': 'forky' };
const HOOK_DIRS = ['/usr/lib/x86_64-linux-gnu/kea/hooks', '/usr/lib/aarch64-linux-gnu/kea/hooks', '/usr/lib/kea/hooks'];
const SCHEMA = 'usr/share/kea/scripts/pgsql/dhcpdb_create.pgsql';

/** The releases to run: all, or those named in $E2E_KEA (comma-separated, e.g. "3.0.4" or "2.6,3.0"). */
export function selectedReleases(env = process.env.E2E_KEA): KeaRelease[] {
  if (!env) return [...KEA_RELEASES];
  const want = env
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return KEA_RELEASES.filter((r) => want.some((w) => r === w || r.startsWith(`${w}.`)));
}

/** Version "major.minor" a dhcpdb_create.pgsql leaves in schema_version (its last UPDATE). */
export function schemaVersionOf(file: string): string {
  const m = [...readFileSync(file, 'utf8').matchAll(/SET version = '(\d+)', minor = '(\d+)'/g)].pop();
  if (!m) throw new Error(`${file}: no schema_version update found`);
  return `${m[1]}.${m[2]}`;
}

const cache = new Map<KeaRelease, Promise<ReleaseInfo>>();

/** Resolves a release, building its root the first time (minutes; then cached across runs). */
export function keaRelease(release: KeaRelease): Promise<ReleaseInfo> {
  let p = cache.get(release);
  if (!p) {
    p = resolveRelease(release);
    cache.set(release, p);
  }
  return p;
}

async function resolveRelease(release: KeaRelease): Promise<ReleaseInfo> {
  const suite = SUITE[release];
  let root: string | null = null;
  if (suite !== 'bookworm') {
    const r = await run(ROOTFS, [suite]);
    root = r.stdout.trim().split('\n').pop()!;
  }
  const inRoot = (p: string) => join(root ?? '/', p);
  const hooksDir = HOOK_DIRS.find((d) => existsSync(join(inRoot(d), 'libdhcp_lease_cmds.so')));
  if (!hooksDir) throw new Error(`Kea ${release}: no hook directory with libdhcp_lease_cmds.so under ${root ?? '/'}`);
  const version = (await run(root ? 'chroot' : 'kea-dhcp4', root ? [root, '/usr/sbin/kea-dhcp4', '-v'] : ['-v'])).stdout.trim();
  if (version !== release) throw new Error(`Kea ${release} expected, ${root ?? 'this machine'} has kea-dhcp4 ${version}`);
  const [maj, min] = release.split('.').map(Number) as [number, number];
  const atLeast = (a: number, b: number, c: number) => maj * 10000 + min * 100 + Number(release.split('.')[2]) >= a * 10000 + b * 100 + c;
  const schemaFile = inRoot(SCHEMA);
  return {
    release,
    suite,
    root,
    hooksDir,
    backendHooks: atLeast(2, 7, 4),
    restrictedPaths: atLeast(2, 7, 9),
    schemaFile,
    schemaVersion: schemaVersionOf(schemaFile),
  };
}
