import { createServer, Server } from 'node:http';

type Labels = Record<string, string>;

interface Series {
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, number>;
}

function labelKey(labels: Labels): string {
  const parts = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** Counters and gauges in the Prometheus text format; small enough not to need a client library. */
export class Metrics {
  private readonly series = new Map<string, Series>();

  private get(name: string, type: Series['type'], help: string): Series {
    let s = this.series.get(name);
    if (!s) {
      s = { help, type, values: new Map() };
      this.series.set(name, s);
    }
    return s;
  }

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    const s = this.get(name, 'counter', help);
    const key = labelKey(labels);
    s.values.set(key, (s.values.get(key) ?? 0) + by);
  }

  set(name: string, help: string, value: number, labels: Labels = {}): void {
    this.get(name, 'gauge', help).values.set(labelKey(labels), value);
  }

  /** Current value (0 if never touched); tests and the shutdown summary read it. */
  value(name: string, labels: Labels = {}): number {
    return this.series.get(name)?.values.get(labelKey(labels)) ?? 0;
  }

  /** Sum over all label sets. */
  total(name: string): number {
    let sum = 0;
    for (const v of this.series.get(name)?.values.values() ?? []) sum += v;
    return sum;
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, s] of this.series) {
      lines.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.type}`);
      for (const [labels, v] of s.values) lines.push(`${name}${labels} ${v}`);
    }
    return lines.join('\n') + '\n';
  }

  serve(port: number, host: string): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(this.render());
      } else {
        res.writeHead(404).end();
      }
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server));
    });
  }
}

export const M = {
  received: ['kea_lease_monitor_leases_received_total', 'Lease events read from a source'],
  rejected: ['kea_lease_monitor_input_rejected_total', 'Malformed CSV rows or NOTIFY payloads, by source and reason'],
  ignored: ['kea_lease_monitor_leases_ignored_total', 'Well-formed events that are not live leases in a selected subnet'],
  reservations: ['kea_lease_monitor_reservations_total', 'Reservation outcomes'],
  batches: ['kea_lease_monitor_batches_total', 'Reservation batches committed'],
  batchSeconds: ['kea_lease_monitor_batch_seconds_total', 'Time spent writing reservation batches'],
  dbErrors: ['kea_lease_monitor_db_errors_total', 'Failed reservation batches, by class'],
  failed: ['kea_lease_monitor_leases_failed_total', 'Leases PostgreSQL refused for good'],
  queueDepth: ['kea_lease_monitor_queue_depth', 'Leases waiting to be written'],
  listenerUp: ['kea_lease_monitor_listener_connected', '1 while the LISTEN connection is up'],
  reconnects: ['kea_lease_monitor_listener_reconnects_total', 'LISTEN connections re-established'],
  catchUp: ['kea_lease_monitor_catchup_leases_total', 'Leases found by catch-up queries'],
  overflows: ['kea_lease_monitor_queue_overflows_total', 'Notifications dropped on a full queue (recovered by catch-up)'],
  discoveryErrors: ['kea_lease_monitor_discovery_write_errors_total', 'Discovery records that could not be written'],
  recordBacklog: ['kea_lease_monitor_discovery_backlog', 'Discovery records waiting for the disk (full, read-only, directory gone)'],
  reconcileRuns: ['kea_lease_monitor_reconcile_runs_total', 'Reconciliation runs (database mode catch-up on the timer)'],
  reconcileSeconds: ['kea_lease_monitor_reconcile_seconds_total', 'Time spent in reconciliation runs'],
  recordsReconciled: ['kea_lease_monitor_records_reconciled_total', 'Leases queued again because their discovery record was missing'],
  rotations: ['kea_lease_monitor_lease_file_rotations_total', 'Lease-file cleanups followed'],
  notSelected: ['kea_lease_monitor_leases_not_selected_total', 'Live leases the selection policy leaves unreserved, by reason'],
  dryRun: ['kea_lease_monitor_dry_run_decisions_total', 'Decisions made with --dry-run (nothing written), by action'],
  pruned: ['kea_lease_monitor_reservations_pruned_total', "The monitor's own reservations removed by the --prune-unseen-for timer"],
  haActive: ['kea_lease_monitor_ha_active', '1 while this monitor holds the HA lock and writes (--ha-group); 0 on a standby'],
} as const;
