// Faults of PostgreSQL and of the monitor's own connections, in database mode (LISTEN/NOTIFY + catch-up).
import { query } from '../../e2e/lib/pg';
import { sleep } from '../../e2e/lib/proc';
import { backendPids, pgRestart, pgStart, pgStop, terminate } from '../lib/cluster';
import { LISTENING, ScenarioSpec } from '../lib/scenario';

export const pgStopped: ScenarioSpec = {
  name: 'PostgreSQL stopped for 30 s',
  mode: 'db',
  async fault(ctx) {
    const opts = await pgStop(ctx.pg);
    await sleep(30_000);
    await pgStart(ctx.pg, opts);
    return { end: Date.now() };
  },
};

export const pgImmediate: ScenarioSpec = {
  name: 'PostgreSQL restarted with -m immediate',
  mode: 'db',
  async fault(ctx) {
    await pgRestart(ctx.pg, 'immediate');
    return { end: Date.now(), tailMs: 3000 };
  },
};

export const listenerKilled: ScenarioSpec = {
  name: "the listener's backend killed (pg_terminate_backend)",
  mode: 'db',
  async fault(ctx) {
    const killed = await terminate(ctx.pg, await backendPids(ctx.pg, 'kea-lease-monitor-listener'));
    return { end: Date.now(), tailMs: 3000, checks: [{ ok: killed === 1, what: `${killed} listener backend killed` }] };
  },
};

export const writerKilled: ScenarioSpec = {
  name: "a writer's backend killed (pg_terminate_backend)",
  mode: 'db',
  rate: 400,
  async fault(ctx) {
    // Aim at a backend inside a write (active, or idle in its transaction); several times over 3 s.
    let killed = 0;
    let midWrite = 0;
    for (let i = 0; i < 30 && killed < 5; i++) {
      const rows = await query<{ pid: number; busy: boolean }>(
        ctx.pg,
        "SELECT pid, state <> 'idle' AS busy FROM pg_stat_activity WHERE application_name = 'kea-lease-monitor' ORDER BY (state <> 'idle') DESC LIMIT 1",
      );
      if (rows[0] && (rows[0].busy || i % 10 === 9)) {
        killed += await terminate(ctx.pg, [rows[0].pid]);
        if (rows[0].busy) midWrite++;
      }
      await sleep(100);
    }
    return {
      end: Date.now(),
      tailMs: 3000,
      checks: [{ ok: killed > 0, what: `${killed} writer backends killed, ${midWrite} of them mid-statement` }],
    };
  },
};

export const sigkillDb: ScenarioSpec = {
  name: 'SIGKILL mid-batch, database mode',
  mode: 'db',
  rate: 400,
  async fault(ctx) {
    const before = Number((await query<{ n: string }>(ctx.pg, 'SELECT count(*) AS n FROM hosts'))[0].n);
    await ctx.mon.kill9();
    await sleep(3000);
    const mon = ctx.relaunch();
    await mon.waitLog(LISTENING, 20_000);
    return { end: Date.now(), tailMs: 2000, checks: [{ ok: before > 0, what: `killed with ${before} reservations written` }] };
  },
};
