import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Health } from './health';
import { SubnetLabels } from './subnet-labels';
import { FatalError } from './errors';
import { VERSION } from './version';

/** An extra GET/HEAD handler on the listener, by path. */
export type Route = (req: IncomingMessage, res: ServerResponse) => void;

export type Labels = Record<string, string | number>;
type Kind = 'counter' | 'gauge' | 'histogram';

/** How a metric is declared; entries of M made with def() carry one. */
export interface MetricSpec {
  /** Default: counter when the name ends in _total, else gauge. */
  type?: Kind;
  labelNames?: readonly string[];
  /** Label sets that exist at zero from the start, so rate() and alerts see the first increment. */
  zero?: readonly Labels[];
  buckets?: readonly number[];
}

/** An entry of M: spread into inc/set/observe as `...M.name`. */
export type MetricDef = readonly [name: string, help: string];

const SPECS = new Map<string, MetricSpec>();

/** Declares a metric: the [name, help] pair the API takes, with its type and labels remembered. */
export function def(name: string, help: string, spec: MetricSpec = {}): MetricDef {
  SPECS.set(name, spec);
  return [name, help] as const;
}

/** Every combination of the given label values: product({ a: ['1', '2'], b: ['x'] }). */
export function product(values: Record<string, readonly string[]>): Labels[] {
  let out: Labels[] = [{}];
  for (const [k, vs] of Object.entries(values)) out = out.flatMap((l) => vs.map((v) => ({ ...l, [k]: v })));
  return out;
}

const OUTCOMES = ['created', 'updated', 'unchanged', 'conflict', 'foreign', 'limit', 'stale', 'superseded', 'failed'];
const POLICY_REASONS = [
  'subnet',
  'mac-denied',
  'hostname-denied',
  'mac-not-allowed',
  'hostname-not-allowed',
  'address-not-allowed',
  'kea-not-honoured',
];
// kea/config-verdict.ts VERDICT_REASONS and AddressProblem.
const KEA_VERDICTS = ['no-hosts-database', 'no-hw-address-identifier', 'reservations-disabled', 'global-only'];
const ADDRESS_PROBLEMS = ['outside-subnet', 'in-pool-out-of-pool'];
// --require-redfish: held for a probe, or the device answered as no Redfish service.
const REDFISH_REASONS = ['pending-probe', 'not-redfish'];
// not-live: lease4 did not hold the lease, so nothing was probed.
const REDFISH_RESULTS = ['present', 'absent', 'unreachable', 'not-live'];
// One HTTPS attempt: a local answer in milliseconds, a silent address at the timeout.
const REDFISH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const IGNORED_REASONS = ['deleted', 'not-default-state', 'expired', 'no-hwaddr', 'no-subnet'];
const FILE_REJECTS = ['bad-header', 'no-header', 'invalid-row', 'oversized', 'truncated'];
// Commit -> reservation is milliseconds when healthy, minutes in an outage.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const BATCH_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Every metric the monitor exports (besides prom-client's process_* and nodejs_* defaults). */
export const M = {
  buildInfo: def('kea_lease_monitor_build_info', 'Always 1: the running release and its Node.js', { labelNames: ['version', 'node'] }),
  received: def('kea_lease_monitor_leases_received_total', 'Lease events read from a source', {
    labelNames: ['source'],
    zero: product({ source: ['memfile', 'database'] }),
  }),
  rejected: def('kea_lease_monitor_input_rejected_total', 'Malformed CSV rows or NOTIFY payloads, by source and reason', {
    labelNames: ['source', 'reason'],
    zero: [...product({ source: ['memfile'], reason: FILE_REJECTS }), { source: 'database', reason: 'invalid-payload' }],
  }),
  ignored: def('kea_lease_monitor_leases_ignored_total', 'Well-formed events that are not live leases in a selected subnet', {
    labelNames: ['reason'],
    zero: product({ reason: IGNORED_REASONS }),
  }),
  notSelected: def('kea_lease_monitor_leases_not_selected_total', 'Live leases the selection policy left out, by reason', {
    labelNames: ['reason', 'subnet_id'],
    zero: product({ reason: [...POLICY_REASONS, ...REDFISH_REASONS] }),
  }),
  reservations: def('kea_lease_monitor_reservations_total', 'Reservation outcomes, by result and subnet', {
    labelNames: ['result', 'subnet_id'],
    zero: product({ result: OUTCOMES }),
  }),
  batches: def('kea_lease_monitor_batches_total', 'Reservation batches committed'),
  batchDuration: def('kea_lease_monitor_batch_duration_seconds', 'Time of the attempt that wrote a reservation batch', {
    type: 'histogram',
    buckets: BATCH_BUCKETS,
  }),
  reservationLatency: def(
    'kea_lease_monitor_reservation_latency_seconds',
    'From the lease commit (database: cltt, whole seconds) or the lease-file read (file) to its reservation written',
    {
      type: 'histogram',
      labelNames: ['source'],
      buckets: LATENCY_BUCKETS,
    },
  ),
  dbErrors: def('kea_lease_monitor_db_errors_total', 'Failed reservation batches, by class', {
    labelNames: ['class'],
    zero: product({ class: ['transient', 'data', 'config'] }),
  }),
  failed: def('kea_lease_monitor_leases_failed_total', 'Leases PostgreSQL refused for good'),
  queueDepth: def('kea_lease_monitor_queue_depth', 'Leases waiting to be written'),
  sourceLag: def('kea_lease_monitor_source_lag_seconds', 'Age of the oldest lease being written (0 when nothing is pending)'),
  lastWrite: def('kea_lease_monitor_last_write_timestamp_seconds', 'Unix time of the last reservation batch written (0: none yet)'),
  ready: def('kea_lease_monitor_ready', '1 while /readyz answers 200: source connected and caught up, last write succeeded'),
  haActive: def('kea_lease_monitor_ha_active', '1 while this instance is the active one of an HA pair (always 1 outside a pair)'),
  schemaVersion: def('kea_lease_monitor_schema_version', 'Kea database schema version found, major + minor/10 (e.g. 22.1)'),
  listenerUp: def('kea_lease_monitor_listener_connected', '1 while the LISTEN connection is up'),
  reconnects: def('kea_lease_monitor_listener_reconnects_total', 'LISTEN connections re-established'),
  catchUp: def('kea_lease_monitor_catchup_leases_total', 'Leases found by catch-up queries'),
  catchUpSkipped: def(
    'kea_lease_monitor_catchup_skipped_total',
    'Leases a catch-up did not queue again: decided foreign or over the cap before, unchanged since',
    { labelNames: ['outcome'], zero: product({ outcome: ['foreign', 'limit'] }) },
  ),
  overflows: def('kea_lease_monitor_queue_overflows_total', 'Notifications dropped on a full queue (recovered by catch-up)'),
  discoveryErrors: def('kea_lease_monitor_discovery_write_errors_total', 'Discovery records that could not be written'),
  rotations: def('kea_lease_monitor_lease_file_rotations_total', 'Lease-file cleanups followed'),
  recordBacklog: def('kea_lease_monitor_discovery_backlog', 'Discovery records waiting for the disk (full, read-only, directory gone)'),
  reconcileRuns: def('kea_lease_monitor_reconcile_runs_total', 'Reconciliation runs (database mode catch-up on the timer)'),
  reconcileSeconds: def('kea_lease_monitor_reconcile_seconds_total', 'Time spent in reconciliation runs'),
  recordsReconciled: def('kea_lease_monitor_records_reconciled_total', 'Leases queued again because their discovery record was missing'),
  dryRun: def('kea_lease_monitor_dry_run_decisions_total', 'Decisions made with --dry-run (nothing written), by action', {
    labelNames: ['action'],
  }),
  keaApiCommands: def(
    'kea_lease_monitor_kea_api_commands_total',
    "Commands sent to Kea's control socket (--writer kea-api), by command and result",
    {
      labelNames: ['command', 'result'],
    },
  ),
  pruned: def('kea_lease_monitor_reservations_pruned_total', "The monitor's own reservations removed by the --prune-unseen-for timer"),
  keaSubnetHonoured: def(
    'kea_lease_monitor_subnet_reservations_honoured',
    "1 when kea-dhcp4's configuration honours an hw-address reservation in this subnet, 0 when not (--kea-control-socket)",
    { labelNames: ['subnet_id'] },
  ),
  keaRefused: def(
    'kea_lease_monitor_leases_refused_kea_config_total',
    "Leases not reserved because kea-dhcp4's configuration would not honour the reservation, by subnet and verdict",
    { labelNames: ['subnet_id', 'verdict'], zero: product({ verdict: KEA_VERDICTS }) },
  ),
  keaAddressWarnings: def(
    'kea_lease_monitor_reserved_address_warnings_total',
    'Devices whose reserved address Kea would ignore (outside the prefix, or in a pool with out-of-pool reservations), by problem',
    { labelNames: ['problem'], zero: product({ problem: ADDRESS_PROBLEMS }) },
  ),
  keaConfigRead: def(
    'kea_lease_monitor_kea_config_read_timestamp_seconds',
    "Unix time kea-dhcp4's configuration was last read through its control socket (0: never)",
  ),
  keaConfigErrors: def(
    'kea_lease_monitor_kea_config_read_errors_total',
    "Failed reads of kea-dhcp4's configuration (socket unreachable, error answer, unreadable configuration)",
  ),
  recordsServed: def(
    'kea_lease_monitor_discovery_records_served_total',
    'Records sent by GET /discovery, and files there skipped (unreadable)',
    {
      labelNames: ['result'],
      zero: product({ result: ['served', 'skipped'] }),
    },
  ),
  redfishProbes: def('kea_lease_monitor_redfish_probes_total', 'Redfish probes of devices ended, by result (--redfish-probe)', {
    labelNames: ['result'],
    zero: product({ result: REDFISH_RESULTS }),
  }),
  redfishProbeDuration: def('kea_lease_monitor_redfish_probe_duration_seconds', 'Time of one HTTPS attempt at a Redfish service root', {
    type: 'histogram',
    buckets: REDFISH_BUCKETS,
  }),
  migrationsVersion: def(
    'kea_lease_monitor_migrations_version',
    "kea-lease-monitor's migrations version recorded in the database (0: none)",
  ),
} as const;

interface Child {
  inc?(by: number): void;
  set?(v: number): void;
  observe?(v: number): void;
}

interface Series {
  labels: Labels;
  child: Child;
  /** Counter/gauge value; observation count for a histogram. */
  value: number;
}

interface Family {
  name: string;
  type: Kind;
  labelNames: readonly string[];
  metric: Counter | Gauge | Histogram;
  series: Map<string, Series>;
}

/**
 * The monitor's metrics on a prom-client registry of its own (tests run several monitors in one
 * process). Values are mirrored so `value`/`total` answer synchronously.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly health = new Health();
  /** Every subnet_id label passes through here: configured or confirmed subnets only, the rest "other". */
  readonly subnets: SubnetLabels;
  private readonly families = new Map<string, Family>();
  private readonly collectors: Array<() => void> = [];

  /** `subnets`: the configured subnet ids, whose per-subnet counters then exist at zero too. */
  constructor(subnets: Iterable<number> = []) {
    collectDefaultMetrics({ register: this.registry });
    const configured = [...subnets];
    this.subnets = new SubnetLabels(configured);
    const ids = configured.map(String);
    for (const [name, help] of Object.values(M)) {
      const spec = SPECS.get(name) ?? {};
      const f = this.family(name, help, spec.type ?? defaultType(name), spec.labelNames ?? []);
      if (f.type !== 'counter') continue;
      for (const labels of spec.zero ?? [{}]) {
        if (f.labelNames.includes('subnet_id') && ids.length > 0) for (const s of ids) this.touch(f, { ...labels, subnet_id: s });
        else this.touch(f, labels);
      }
    }
    this.set(...M.haActive, 1);
    this.set(...M.buildInfo, 1, { version: VERSION, node: process.version });
    this.onCollect(() => this.set(...M.ready, this.health.readiness().ready ? 1 : 0));
  }

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    const s = this.series(name, help, 'counter', labels);
    s.child.inc?.(by);
    s.value += by;
  }

  set(name: string, help: string, value: number, labels: Labels = {}): void {
    const s = this.series(name, help, 'gauge', labels);
    s.child.set?.(value);
    s.value = value;
  }

  observe(name: string, help: string, value: number, labels: Labels = {}): void {
    const s = this.series(name, help, 'histogram', labels);
    s.child.observe?.(value);
    s.value++;
  }

  /** Sum over the series whose labels include `labels` (0 if none); a histogram counts observations. */
  value(name: string, labels: Labels = {}): number {
    const f = this.families.get(name);
    if (!f) return 0;
    const want = Object.entries(labels);
    let sum = 0;
    for (const s of f.series.values()) if (want.every(([k, v]) => String(s.labels[k]) === String(v))) sum += s.value;
    return sum;
  }

  /** Sum over all label sets. */
  total(name: string): number {
    return this.value(name);
  }

  /** Runs just before every scrape, to refresh gauges that are cheaper to compute than to keep current. */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  async render(): Promise<string> {
    for (const fn of this.collectors) fn();
    return this.registry.metrics();
  }

  /** /metrics, /healthz (alive), /readyz (200, or 503 with the reasons) and `routes` on one listener; GET and HEAD only. */
  serve(port: number, host: string, routes: Record<string, Route> = {}): Promise<Server> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
      } else if (path === '/metrics') {
        this.render().then(
          (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
        );
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const { ready, reasons } = this.health.readiness();
        res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : `not ready: ${reasons.join('; ')}\n`);
      } else if (Object.hasOwn(routes, path)) {
        routes[path](req, res);
      } else {
        res.writeHead(404).end();
      }
    });
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, port)));
      server.listen(port, host, () => resolve(server));
    });
  }

  private series(name: string, help: string, type: Kind, labels: Labels): Series {
    if (labels.subnet_id !== undefined) labels = { ...labels, subnet_id: this.subnets.label(labels.subnet_id) };
    let f = this.families.get(name);
    // Not declared with def(): typed by the first call, labelled by the first label set.
    f ??= this.family(name, help, SPECS.get(name)?.type ?? type, SPECS.get(name)?.labelNames ?? Object.keys(labels));
    return this.touch(f, labels);
  }

  private touch(f: Family, labels: Labels): Series {
    let key = '';
    for (const n of f.labelNames) key += `${labels[n] ?? ''}\u0001`;
    let s = f.series.get(key);
    if (!s) {
      for (const k of Object.keys(labels)) {
        if (!f.labelNames.includes(k)) throw new Error(`metric ${f.name} has no label ${k}`);
      }
      const child = (f.labelNames.length ? f.metric.labels(labels) : f.metric) as Child;
      s = { labels: { ...labels }, child, value: 0 };
      if (f.type === 'counter') child.inc?.(0);
      f.series.set(key, s);
    }
    return s;
  }

  private family(name: string, help: string, type: Kind, labelNames: readonly string[]): Family {
    const common = { name, help, labelNames: [...labelNames], registers: [this.registry] };
    const buckets = SPECS.get(name)?.buckets;
    const metric =
      type === 'counter'
        ? new Counter(common)
        : type === 'gauge'
          ? new Gauge(common)
          : new Histogram({ ...common, ...(buckets ? { buckets: [...buckets] } : {}) });
    const f: Family = { name, type, labelNames, metric, series: new Map() };
    this.families.set(name, f);
    return f;
  }
}

function defaultType(name: string): Kind {
  return name.endsWith('_total') ? 'counter' : 'gauge';
}

/** The metrics endpoint cannot listen: one line naming the address and the flags that choose it. */
function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const why: Record<string, string> = {
    EADDRINUSE: 'address already in use (another kea-lease-monitor or exporter?)',
    EADDRNOTAVAIL: 'no such address on this host',
    EACCES: 'permission denied',
    ENOTFOUND: 'no such host',
  };
  const reason = (err.code && why[err.code]) ?? err.message;
  return new FatalError(
    `cannot serve metrics on ${where}: ${reason}; choose another --metrics-port or --metrics-host (--metrics-port 0 turns the endpoint off)`,
  );
}
