// The system under test: the built monitor, or the seed BASELINE, started the same way.
import { join } from 'node:path';
import { LISTENING, Monitor, startMonitor, startProcess } from '../../test/e2e/lib/monitor';
import { Pg, ROOT } from '../../test/e2e/lib/pg';
import { run } from '../../test/e2e/lib/proc';

export type Kind = 'monitor' | 'baseline-select-insert' | 'baseline-upsert';

export interface Sut {
  m: Monitor;
  pid: number;
  readyMs: number;
}

function pgVars(pg: Pg, user?: string): NodeJS.ProcessEnv {
  return { ...process.env, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: user ?? pg.user, PGDATABASE: pg.database };
}

export async function installBaselineTrigger(pg: Pg): Promise<void> {
  await run('node', ['--import', 'tsx', join(ROOT, 'bench/baseline-seed.ts'), '--install'], { env: pgVars(pg), cwd: ROOT });
}

export async function startSut(
  kind: Kind,
  pg: Pg,
  o: { outputDir: string; mode?: 'db' | 'file'; leaseFile?: string; stateFile?: string; dbUser?: string },
): Promise<Sut> {
  let m: Monitor;
  if (kind === 'monitor') {
    m = startMonitor({
      pg,
      mode: o.mode ?? 'db',
      outputDir: o.outputDir,
      leaseFile: o.leaseFile,
      stateFile: o.stateFile,
      subnetIds: [1],
      extraEnv: o.dbUser ? { KEA_LM_DB_USER: o.dbUser } : {},
    });
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
