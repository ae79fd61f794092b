/**
 * Reads kea-dhcp4's configuration through its control socket (`config-get`, no hook needed) at start
 * and on a slow timer, and answers for the writer whether Kea would honour a reservation. A failed
 * read keeps the last configuration read (none yet: nothing is refused); it never stops the monitor.
 */
import { errorMessage } from '../errors';
import { formatIPv4, formatMac, Lease } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import { keaSelection, LeaseGate } from '../policy/kea';
import type { Selection } from '../policy/select';
import { KeaDhcp4Config, readDhcp4Config } from './config';
import { reservedAddressProblem, SubnetVerdict, subnetVerdicts, WriterKind } from './config-verdict';
import { KeaControlSocket } from './control-socket';

export interface KeaConfigWatchSettings {
  socketPath: string;
  /** One config-get may take this long. */
  timeoutMs: number;
  /** Between two reads. */
  intervalMs: number;
  writer: WriterKind;
}

// Bounds the memory of devices already warned about; past it, a device may be warned about once more.
const REMEMBERED = 100_000;
// A lease in a subnet the last configuration lacks triggers a read, at most this often.
const UNKNOWN_SUBNET_REREAD_MS = 30_000;
// config-get carries every reservation of the configuration file: allow a large one.
const MAX_CONFIG_BYTES = 256 * 1024 * 1024;

/** One config-get, checked: kea-dhcp4's configuration as the verdicts need it. */
export async function readKeaConfig(socket: KeaControlSocket): Promise<KeaDhcp4Config> {
  return readDhcp4Config((await socket.call('config-get')).arguments);
}

export function configSocket(path: string, timeoutMs: number): KeaControlSocket {
  return new KeaControlSocket(path, { timeoutMs, concurrency: 1, maxAnswerBytes: MAX_CONFIG_BYTES });
}

export class KeaConfigWatch implements LeaseGate {
  private readonly socket: KeaControlSocket;
  private config: KeaDhcp4Config | null = null;
  private verdicts: Map<number, SubnetVerdict> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private reading: Promise<void> | null = null;
  private lastRead = -Infinity;
  private failing = false;
  private stopped = false;
  private readonly warnedDevices = new Set<string>();

  constructor(
    private readonly settings: KeaConfigWatchSettings,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.socket = configSocket(settings.socketPath, settings.timeoutMs);
  }

  /** The verdicts of the last configuration read, or null when none has been read. */
  get current(): ReadonlyMap<number, SubnetVerdict> | null {
    return this.verdicts;
  }

  /** Reads once (bounded by the timeout), then on the timer. */
  async start(): Promise<void> {
    this.metrics.set(...M.keaConfigRead, 0);
    await this.read();
    this.schedule();
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    return this.reading ?? Promise.resolve();
  }

  /** One read; overlapping calls share it. */
  read(): Promise<void> {
    this.reading ??= this.readOnce().finally(() => (this.reading = null));
    return this.reading;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.read().finally(() => this.schedule()), this.settings.intervalMs);
    this.timer.unref();
  }

  private async readOnce(): Promise<void> {
    this.lastRead = Date.now();
    try {
      const config = await readKeaConfig(this.socket);
      this.apply(config, subnetVerdicts(config, this.settings.writer));
      this.metrics.set(...M.keaConfigRead, Date.now() / 1000);
      if (this.failing) this.log.info("Read kea-dhcp4's configuration again", { socket: this.settings.socketPath });
      this.failing = false;
    } catch (err) {
      this.metrics.inc(...M.keaConfigErrors);
      const fields = { socket: this.settings.socketPath, error: errorMessage(err) };
      if (this.failing) this.log.debug("Still cannot read kea-dhcp4's configuration", fields);
      else if (this.config) this.log.warn("Cannot read kea-dhcp4's configuration; keeping the last one read", fields);
      else this.log.warn("Cannot read kea-dhcp4's configuration; until it is read, no reservation is refused for it", fields);
      this.failing = true;
    }
  }

  /** Logs each subnet whose verdict changed: one warning per subnet Kea would not honour. */
  private apply(config: KeaDhcp4Config, next: Map<number, SubnetVerdict>): void {
    const first = this.verdicts === null;
    for (const v of next.values()) {
      const before = this.verdicts?.get(v.subnetId);
      this.metrics.set(...M.keaSubnetHonoured, v.verdict === 'honoured' ? 1 : 0, { subnet_id: v.subnetId });
      if (before?.verdict === v.verdict && before.detail === v.detail) continue;
      const fields = { subnet_id: v.subnetId, subnet: v.prefix, shared_network: v.sharedNetwork, verdict: v.verdict, detail: v.detail };
      if (v.verdict !== 'honoured') {
        this.log.warn('kea-dhcp4 would not honour reservations in this subnet; its leases are not reserved', fields);
      } else if (v.outOfPool) {
        this.log.warn(
          'kea-dhcp4 honours only out-of-pool reservations in this subnet; reserved addresses inside a pool are ignored',
          fields,
        );
      } else if (before || first) {
        this.log[first ? 'debug' : 'info']('kea-dhcp4 honours reservations in this subnet', fields);
      }
    }
    if (first) {
      const refused = [...next.values()].filter((v) => v.verdict !== 'honoured').map((v) => v.subnetId);
      this.log.info("Read kea-dhcp4's configuration", { subnets: next.size, not_honoured: refused });
    }
    this.config = config;
    this.verdicts = next;
  }

  /** The writer's question: refuse a subnet Kea would not honour; warn once per device about an address Kea would ignore. */
  admit(lease: Pick<Lease, 'hwaddr' | 'address' | 'subnetId'>): Selection {
    const s = keaSelection(lease.subnetId, this.verdicts);
    if (!s.selected) {
      const verdict = this.verdicts?.get(lease.subnetId)?.verdict ?? 'unknown';
      this.metrics.inc(...M.keaRefused, { subnet_id: lease.subnetId, verdict });
      return s;
    }
    const subnet = this.config?.subnets.get(lease.subnetId);
    if (!subnet) {
      if (this.config && Date.now() - this.lastRead > UNKNOWN_SUBNET_REREAD_MS) void this.read();
      return s;
    }
    const p = reservedAddressProblem(subnet, lease.address);
    if (p && this.once(`${formatMac(lease.hwaddr)}/${lease.subnetId}/${p.problem}`)) {
      this.metrics.inc(...M.keaAddressWarnings, { problem: p.problem });
      this.log.warn('kea-dhcp4 would ignore the address reserved for this device', {
        mac: formatMac(lease.hwaddr),
        ip: formatIPv4(lease.address),
        subnet_id: lease.subnetId,
        problem: p.problem,
        detail: p.detail,
      });
    }
    return s;
  }

  private once(key: string): boolean {
    if (this.warnedDevices.has(key)) return false;
    if (this.warnedDevices.size >= REMEMBERED) this.warnedDevices.clear();
    this.warnedDevices.add(key);
    return true;
  }
}
