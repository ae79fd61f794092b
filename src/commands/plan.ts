import { errorMessage } from '../errors';
import type { KeaDhcp4Config } from '../kea/config';
import { reservedAddressProblem, subnetVerdicts, SubnetVerdict } from '../kea/config-verdict';
import { configSocket, readKeaConfig } from '../kea/config-watch';
import { DiscoveryWriter } from '../discovery';
import { createLogger } from '../logger';
import { readLease4Store, readMemfileStore } from '../lifecycle/lease-store';
import { PLAN_ACTIONS, planStore, PlanLine, REASON_TEXT } from '../lifecycle/plan';
import { parseIPv4 } from '../lease';
import type { Options } from '../options';
import { compilePolicy } from '../policy/select';
import { emit, Output, withClient } from './client';

/**
 * --kea-control-socket: kea-dhcp4's verdict per subnet, printed before the leases. Unreadable, it is
 * said so and nothing is refused, as the daemon does without a configuration.
 */
async function keaVerdicts(
  o: Options,
  out: Output,
): Promise<{ config: KeaDhcp4Config; verdicts: ReadonlyMap<number, SubnetVerdict> } | null> {
  if (o.keaControlSocket === null) return null;
  let config: KeaDhcp4Config;
  let verdicts: Map<number, SubnetVerdict>;
  try {
    config = await readKeaConfig(configSocket(o.keaControlSocket, o.keaApiTimeout * 1000));
    verdicts = subnetVerdicts(config, o.writer);
  } catch (err) {
    emit(
      out,
      { kea_config: 'unreadable', socket: o.keaControlSocket, error: errorMessage(err) },
      `kea-dhcp4 configuration unreadable (${errorMessage(err)}): no subnet is refused for it`,
    );
    return null;
  }
  const wanted = new Set(o.subnetIds);
  for (const v of verdicts.values()) {
    if (wanted.size > 0 && !wanted.has(v.subnetId)) continue;
    const where = v.sharedNetwork === null ? v.prefix : `${v.prefix}, shared network ${JSON.stringify(v.sharedNetwork)}`;
    emit(
      out,
      { subnet_id: v.subnetId, subnet: v.prefix, shared_network: v.sharedNetwork, verdict: v.verdict, detail: v.detail },
      `kea subnet ${v.subnetId} (${where}): ${v.verdict}${v.detail ? `: ${v.detail}` : ''}`,
    );
  }
  return { config, verdicts };
}

/** The daemon's per-device warning: the address the monitor's reservation holds is one Kea would ignore. */
function addressWarnings(config: KeaDhcp4Config, lines: PlanLine[], out: Output): void {
  for (const l of lines) {
    if (l.action !== 'create' && l.action !== 'update' && l.action !== 'unchanged') continue;
    const subnet = config.subnets.get(l.subnet_id);
    const p = subnet ? reservedAddressProblem(subnet, parseIPv4(l.ip)) : null;
    if (!p) continue;
    emit(
      out,
      { mac: l.mac, ip: l.ip, subnet_id: l.subnet_id, kea_warning: p.problem, detail: p.detail },
      `${'warning'.padEnd(12)} ${l.mac} ${l.ip.padEnd(15)} subnet ${l.subnet_id}  ${p.detail}`,
    );
  }
}

/** `plan`: what the daemon would do with the lease store as it stands; writes nothing. */
export async function planCommand(o: Options, out: Output): Promise<number> {
  const policy = compilePolicy(o.policy);
  const kea = await keaVerdicts(o, out);
  const records = new DiscoveryWriter(o.outputDir);
  const redfish = o.redfish.require ? (l: { hwaddr: Buffer }) => records.redfishOf(l.hwaddr)?.status ?? null : null;
  // Malformed rows are logged (stderr; warnings are written at once) and counted as the daemon does.
  const log = createLogger(o.logLevel, o.logFormat).child({ module: 'memfile' });
  const { lines, malformed } = await withClient(o.db, 'kea-lease-monitor-plan', async (c) => {
    const store = o.useDatabaseEvents
      ? await readLease4Store(c)
      : await readMemfileStore(o.leaseFile, undefined, (r) => log.warn('Malformed lease file row skipped', { ...r }));
    const planned = await planStore(c, store, policy, { maxPerSubnet: o.maxReservationsPerSubnet }, kea?.verdicts ?? null, redfish);
    return { lines: planned, malformed: store.rejected };
  });
  // Every action counted, zero included; JSON keys in snake_case.
  const counts = new Map(PLAN_ACTIONS.map((a) => [a, 0]));
  for (const l of lines) {
    counts.set(l.action, (counts.get(l.action) ?? 0) + 1);
    emit(
      out,
      { ...l },
      `${l.action.padEnd(12)} ${l.mac} ${l.ip.padEnd(15)} subnet ${l.subnet_id} ${l.hostname ?? '-'}: ${REASON_TEXT[l.reason]}`,
    );
  }
  if (kea) addressWarnings(kea.config, lines, out);
  const nonZero = [...counts].filter(([, n]) => n > 0);
  emit(
    out,
    {
      leases: lines.length,
      ...Object.fromEntries([...counts].map(([a, n]) => [a.replace(/-/g, '_'), n])),
      malformed_rows: malformed,
      dry_run: true,
    },
    `${lines.length} live leases: ${nonZero.map(([a, n]) => `${n} ${a}`).join(', ') || 'nothing to do'}${
      malformed > 0 ? `; ${malformed} malformed lease file rows skipped` : ''
    }`,
  );
  return 0;
}
