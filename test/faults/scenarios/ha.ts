// The HA pair (--ha-group): two monitors on one database, one active. The active is SIGKILLed mid-stream,
// or loses its lock connection; the peer must carry on within 30 s with nothing lost or doubled.
import { join } from 'node:path';
import { now, sleep } from '../../e2e/lib/proc';
import { backendPids, terminate } from '../lib/cluster';
import { Ctx, LISTENING, ScenarioSpec } from '../lib/scenario';

const ACTIVE = /Active monitor: holding the HA lock/;
const STANDBY = /Standing by for the HA lock/;
const WROTE = /Static reservation (created|updated)/;
const HA = ['--ha-group', 'faults', '--ha-interval', '2'];

async function startPeer(ctx: Ctx) {
  const first = ctx.mon;
  const peer = ctx.relaunch({ outputDir: join(ctx.dir, 'discovery-peer') });
  ctx.mon = first;
  await peer.waitLog(STANDBY, 20_000);
  await sleep(3000);
  return { first, peer, standbyWrites: peer.count(WROTE) };
}

export const haKill: ScenarioSpec = {
  name: 'HA pair: the active monitor SIGKILLed mid-stream',
  mode: 'db',
  rate: 300,
  launch: { args: HA },
  async fault(ctx) {
    const { first, peer, standbyWrites } = await startPeer(ctx);
    const firstWasActive = first.seen(ACTIVE) !== undefined;
    const killedAt = Date.now();
    const killedAtLogClock = now(); // log lines are stamped with this clock
    await first.kill9();
    ctx.mon = peer;
    const took = await peer.waitLog(ACTIVE, 30_000).then(
      (t) => (t - killedAtLogClock) / 1000,
      () => null,
    );
    await peer.waitLog(LISTENING, 30_000).catch(() => undefined);
    return {
      end: killedAt,
      tailMs: 8000,
      checks: [
        { ok: firstWasActive, what: firstWasActive ? '' : 'the first monitor never became active' },
        { ok: standbyWrites === 0, what: `the standby wrote ${standbyWrites} reservations while standing by` },
        {
          ok: took !== null && took <= 30,
          what: took === null ? 'the peer did not take over within 30 s' : `peer active ${took.toFixed(1)} s after the kill`,
        },
      ],
    };
  },
};

export const haLockLost: ScenarioSpec = {
  name: "HA pair: the active monitor's lock connection killed",
  mode: 'db',
  rate: 300,
  launch: { args: HA },
  async fault(ctx) {
    const { first, peer } = await startPeer(ctx);
    // The active's lock session; the peer's (a standby's) session holds no lock.
    const pids = await backendPids(ctx.pg, 'kea-lease-monitor-ha');
    const lockPid = first.lines.map((l) => /"backend_pid":(\d+)/.exec(l)?.[1]).find(Boolean);
    const killedAt = Date.now();
    const killedAtLogClock = now();
    await terminate(
      ctx.pg,
      pids.filter((p) => String(p) === lockPid),
    );
    const stepped = await first.waitLog(/No longer the active monitor/, 10_000).then(
      (t) => (t - killedAtLogClock) / 1000,
      () => null,
    );
    const firstStopped = await first.waitLog(/"message":"Stopped"/, 10_000).then(
      () => true,
      () => false,
    );
    await sleep(6000);
    // Exactly one of them is active now: whoever re-took the lock.
    const active = [first, peer].filter((m) => m.count(ACTIVE) > m.count(/No longer the active monitor/)).length;
    ctx.mon = first;
    return {
      end: killedAt,
      tailMs: 3000,
      checks: [
        {
          ok: stepped !== null,
          what: stepped === null ? 'the deposed monitor did not step down' : `stepped down ${stepped.toFixed(1)} s after losing its lock`,
        },
        { ok: firstStopped, what: firstStopped ? '' : 'the deposed monitor did not stop its pipeline' },
        { ok: active === 1, what: `${active} monitors active afterwards` },
      ],
    };
  },
};
