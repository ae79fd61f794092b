// Two private network namespaces joined by a veth pair: all DHCP traffic stays inside them.
import { onCleanup, run } from './proc';

export interface Net {
  srv: string; // namespace running Kea
  cli: string; // namespace running perfdhcp / udhcpc
  srvIf: string;
  cliIf: string;
  srvIp: string;
  cliIp: string;
  subnet: string;
  pool: string;
}

/** Returns null with a reason when this machine cannot create namespaces (no root, no CAP_SYS_ADMIN). */
export async function netnsUnavailable(): Promise<string | null> {
  const probe = `lmkprobe${process.pid}`;
  const r = await run('ip', ['netns', 'add', probe], { allowFail: true }).catch((e: Error) => ({ code: 1, stderr: e.message, stdout: '' }));
  if (r.code !== 0) return `cannot create network namespaces (${r.stderr.trim().split('\n')[0]})`;
  await run('ip', ['netns', 'del', probe], { allowFail: true });
  return null;
}

export async function createNet(tag: string): Promise<Net> {
  const id = `${process.pid % 100000}${tag}`;
  const n: Net = {
    srv: `lmk-srv-${id}`,
    cli: `lmk-cli-${id}`,
    srvIf: `lks${id}`.slice(0, 15),
    cliIf: `lkc${id}`.slice(0, 15),
    srvIp: '10.99.0.1',
    cliIp: '10.99.0.2',
    subnet: '10.99.0.0/16',
    pool: '10.99.1.0 - 10.99.255.250',
  };
  for (const ns of [n.srv, n.cli]) {
    await run('ip', ['netns', 'add', ns]);
    onCleanup(`netns ${ns}`, () => run('ip', ['netns', 'del', ns], { allowFail: true }).then(() => undefined));
  }
  // Created directly inside the namespaces, so no interface ever exists in the host's namespace.
  await run('ip', ['-n', n.srv, 'link', 'add', n.srvIf, 'type', 'veth', 'peer', 'name', n.cliIf, 'netns', n.cli]);
  await run('ip', ['-n', n.srv, 'addr', 'add', `${n.srvIp}/16`, 'dev', n.srvIf]);
  await run('ip', ['-n', n.cli, 'addr', 'add', `${n.cliIp}/16`, 'dev', n.cliIf]);
  await run('ip', ['-n', n.cli, 'link', 'set', n.cliIf, 'address', '02:99:00:00:00:02']);
  for (const [ns, ifc] of [
    [n.srv, n.srvIf],
    [n.cli, n.cliIf],
  ] as const) {
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', ns, 'link', 'set', ifc, 'up']);
  }
  return n;
}
