// Half-open TCP: PostgreSQL in one private network namespace, the monitor in another, joined by a veth
// pair with private addresses. For 60 s every packet between them is dropped (nftables DROP, no RST).
import { onCleanup, run, sleep } from '../../e2e/lib/proc';
import { relisten } from '../lib/cluster';
import { ScenarioSpec } from '../lib/scenario';

const id = `${process.pid % 100000}`;
const NS_PG = `klmf-pg-${id}`;
const NS_MON = `klmf-mon-${id}`;
const PG_IP = '10.251.0.1';
const MON_IP = '10.251.0.2';

async function createPair(): Promise<void> {
  for (const ns of [NS_PG, NS_MON]) {
    await run('ip', ['netns', 'add', ns]);
    onCleanup(`netns ${ns}`, () => run('ip', ['netns', 'del', ns], { allowFail: true }).then(() => undefined));
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  // Both ends are created inside the namespaces: nothing appears in the host's namespace.
  await run('ip', [
    '-n',
    NS_PG,
    'link',
    'add',
    `kfp${id}`.slice(0, 15),
    'type',
    'veth',
    'peer',
    'name',
    `kfm${id}`.slice(0, 15),
    'netns',
    NS_MON,
  ]);
  await run('ip', ['-n', NS_PG, 'addr', 'add', `${PG_IP}/24`, 'dev', `kfp${id}`.slice(0, 15)]);
  await run('ip', ['-n', NS_MON, 'addr', 'add', `${MON_IP}/24`, 'dev', `kfm${id}`.slice(0, 15)]);
  await run('ip', ['-n', NS_PG, 'link', 'set', `kfp${id}`.slice(0, 15), 'up']);
  await run('ip', ['-n', NS_MON, 'link', 'set', `kfm${id}`.slice(0, 15), 'up']);
}

const RULES = `table inet klmfaults {
  chain out { type filter hook output priority 0; policy accept; ip daddr ${PG_IP} drop; }
  chain in { type filter hook input priority 0; policy accept; ip saddr ${PG_IP} drop; }
}
`;

export const halfOpen: ScenarioSpec = {
  name: 'half-open TCP for 60 s (packets dropped, no RST)',
  mode: 'db',
  timeoutMs: 120_000,
  async setup(pg) {
    await createPair();
    await relisten(pg, `127.0.0.1,${PG_IP}`, '10.251.0.0/24', NS_PG);
    return { netns: NS_MON, tcp: { host: PG_IP, port: pg.port } };
  },
  async fault(ctx) {
    await run('ip', ['netns', 'exec', NS_MON, 'nft', '-f', '-'], { input: RULES });
    const undo = onCleanup('nft rules', () =>
      run('ip', ['netns', 'exec', NS_MON, 'nft', 'delete', 'table', 'inet', 'klmfaults'], { allowFail: true }).then(() => undefined),
    );
    await sleep(60_000);
    await run('ip', ['netns', 'exec', NS_MON, 'nft', 'delete', 'table', 'inet', 'klmfaults']);
    undo();
    const noticed = ctx.mon.count(/Lost the database listener|Cannot write reservations|timed out|timeout/i);
    return { end: Date.now(), tailMs: 2000, checks: [{ ok: true, what: `${noticed} log lines about the dead path during the drop` }] };
  },
};
