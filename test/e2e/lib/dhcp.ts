// Real DHCP clients in the client namespace.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Net } from './netns';
import { run } from './proc';

export const UDHCPC_MAC = '02:99:00:00:00:02'; // set on the client veth by createNet

/** One full DORA with busybox udhcpc on the client veth (its MAC is UDHCPC_MAC); returns the bound address. */
export async function udhcpcOnce(net: Net, dir: string, hostname = 'e2e-udhcpc'): Promise<string> {
  const script = join(dir, 'udhcpc.script');
  // The script only reports; it must not reconfigure the veth.
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "BOUND $ip"\nexit 0\n');
  chmodSync(script, 0o755);
  const r = await run(
    'ip',
    [
      'netns',
      'exec',
      net.cli,
      'udhcpc',
      '-f',
      '-q',
      '-n',
      '-t',
      '5',
      '-T',
      '1',
      '-i',
      net.cliIf,
      '-s',
      script,
      '-x',
      `hostname:${hostname}`,
    ],
    {
      allowFail: true,
    },
  );
  const m = /BOUND (\S+)/.exec(r.stdout);
  if (!m) throw new Error(`udhcpc got no lease (exit ${r.code}): ${(r.stderr + r.stdout).trim().slice(-300)}`);
  return m[1];
}

/** Background perfdhcp run; resolves with its report. */
export function perfdhcp(
  net: Net,
  o: { rate: number; clients: number; seconds: number; mac?: string },
): Promise<{ code: number | null; report: string }> {
  const a = [
    'netns',
    'exec',
    net.cli,
    'perfdhcp',
    '-4',
    '-l',
    net.cliIf,
    '-r',
    String(o.rate),
    '-R',
    String(o.clients),
    '-p',
    String(o.seconds),
  ];
  if (o.mac) a.push('-b', `mac=${o.mac}`);
  a.push(net.srvIp);
  return run('ip', a, { allowFail: true }).then((r) => ({ code: r.code, report: r.stdout + r.stderr }));
}

export function perfdhcpSummary(report: string): string {
  const sent = /sent packets: (\d+)/.exec(report)?.[1];
  const drops = [...report.matchAll(/drops: (\d+)/g)].map((m) => m[1]).join('/');
  const rate = /Rate: ([\d.]+)/.exec(report)?.[1];
  return `perfdhcp rate ${rate}/s, ${sent} DISCOVERs, drops ${drops}`;
}
