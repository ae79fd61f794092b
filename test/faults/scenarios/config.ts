// Faults an operator causes: a host list whose first server is read-only, a privilege revoked while running.
import { migrate } from '../../e2e/lib/monitor';
import { query } from '../../e2e/lib/pg';
import { waitFor } from '../../e2e/lib/proc';
import { relisten, startCluster } from '../lib/cluster';
import { LISTENING, ScenarioSpec } from '../lib/scenario';

export const failover: ScenarioSpec = {
  name: 'failover: first host read-only, second a primary (--db-host a,b)',
  mode: 'db',
  async setup(primary) {
    // The first host: another cluster with the Kea schema whose database refuses writes (SQLSTATE 25006),
    // as a standby or a demoted primary does; same port as the primary, on another loopback address.
    const ro = await startCluster('readonly');
    await migrate(ro, true);
    await query(ro, 'ALTER DATABASE kea SET default_transaction_read_only = on');
    await relisten(ro, '127.0.0.2', '127.0.0.0/8', undefined, primary.port);
    return { tcp: { host: '127.0.0.2,127.0.0.1', port: primary.port } };
  },
  fault() {
    return Promise.resolve({ end: Date.now(), tailMs: 2000 });
  },
};

const ROLE = 'klm_faults';

export const privilegeRevoked: ScenarioSpec = {
  name: 'privilege revoked while running (INSERT on hosts)',
  mode: 'db',
  exitExpected: true,
  async setup(pg) {
    await query(pg, `CREATE ROLE ${ROLE} LOGIN`);
    await query(pg, `GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${ROLE}`);
    await query(pg, `GRANT INSERT, UPDATE ON hosts TO ${ROLE}`);
    await query(pg, `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${ROLE}`);
    return { user: ROLE };
  },
  async fault(ctx) {
    const t0 = Date.now();
    await query(ctx.pg, `REVOKE INSERT ON hosts FROM ${ROLE}`);
    const exited = await waitFor('monitor exit', () => ctx.mon.proc.exitCode !== null, 60_000, 200).then(
      () => true,
      () => false,
    );
    const code = ctx.mon.proc.exitCode;
    const named = ctx.mon.lines.filter((l) => /"level":"error"/.test(l) && /INSERT/.test(l) && /hosts/.test(l));
    if (!exited) await ctx.mon.stop();
    await query(ctx.pg, `GRANT INSERT ON hosts TO ${ROLE}`);
    const mon = ctx.relaunch();
    await mon.waitLog(LISTENING, 20_000);
    return {
      end: Date.now(),
      tailMs: 2000,
      checks: [
        {
          ok: exited && code === 1,
          what: exited
            ? `exited ${code} ${((Date.now() - t0) / 1000).toFixed(1)} s after the REVOKE`
            : 'still running 60 s after the REVOKE',
        },
        {
          ok: named.length >= 1,
          what: named.length ? `said: ${JSON.parse(named[named.length - 1]).message}` : 'no error line naming INSERT on hosts',
        },
      ],
    };
  },
};
