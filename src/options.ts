import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDuration } from './duration';
import { UsageError } from './errors';
import { compileHostnamePattern, parseCidr, parseMacPrefix } from './policy/rules';
import type { PolicyConfig } from './policy/select';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'text' | 'json';

/** Bounds on every wait for PostgreSQL, in milliseconds (0: no bound). */
export interface DbTimeouts {
  /** Server side: a statement running longer is cancelled (SQLSTATE 57014). */
  statementMs: number;
  /** Server side: a wait for a lock (row, table or advisory) longer than this fails (55P03). */
  lockMs: number;
  /** Server side: a session idle inside a transaction this long is ended, so it cannot hold locks for ever. */
  idleInTransactionMs: number;
  /** Client side: no answer at all within this long (half-open TCP) abandons the connection. */
  queryMs: number;
  /** Client side: a connection attempt (TCP + startup + authentication) longer than this fails. */
  connectMs: number;
}

/** How to reach Kea's PostgreSQL database. */
export interface DbOptions {
  /**
   * Host name, address, or a unix socket directory (starts with "/"); a comma-separated list is
   * tried in order, like libpq, and only a read-write primary is used.
   */
  host: string;
  /** The port for every host, unless `ports` gives one per host. */
  port: number;
  ports?: number[];
  /** Defaults: see DEFAULT_TIMEOUTS in db/connection.ts. */
  timeouts?: DbTimeouts;
  /** Kea's database. */
  database: string;
  user: string;
  /** Resolved from --db-password-file, --db-password, KEA_DB_PASSWORD or the systemd credential; never logged. */
  password?: string;
}

/** Everything the monitor needs, built once: defaults, then environment, then argv. */
export interface Options {
  /** Follow lease4 through LISTEN/NOTIFY instead of the memfile CSV. */
  useDatabaseEvents: boolean;
  db: DbOptions;
  /** Subnets whose leases become reservations; empty means every subnet. */
  subnetIds: number[];
  /** Where the per-device discovery records go. */
  outputDir: string;
  /** Kea's memfile lease file (file mode). */
  leaseFile: string;
  /** Where file mode remembers how far it has read. */
  stateFile: string;
  /** Seconds between stat() polls where the filesystem cannot be watched. */
  pollInterval: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** Prometheus endpoint port; 0 turns it off. */
  metricsPort: number;
  metricsHost: string;
  /** GET /discovery on the metrics listener: the records as NDJSON. */
  discoveryEndpoint: boolean;
  /** Most leases written in one statement. */
  batchSize: number;
  /** Milliseconds between the starts of two batches while leases keep coming (coalesces single-lease commits); 0: none. */
  batchLinger: number;
  /** Most leases waiting to be written; beyond it sources wait (file) or fall back to a catch-up (database). */
  queueSize: number;
  /** Discovery records that may wait for the disk before the writer pauses. */
  recordBacklog: number;
  /** Write pool size. */
  poolSize: number;
  /** Seconds between listener health checks (pg_listening_channels()). */
  heartbeatInterval: number;
  /** Cap, in seconds, of the reconnect backoff. */
  reconnectMaxDelay: number;
  /** Seconds a graceful stop may spend finishing queued work. */
  shutdownGrace: number;
  /** Where reservations go: the hosts table (sql) or kea-dhcp4's host_cmds commands (kea-api). */
  writer: 'sql' | 'kea-api';
  /** kea-dhcp4's UNIX control socket (kea-api writer). */
  keaControlSocket: string | null;
  /** Commands in flight on the control socket at once. */
  keaApiConcurrency: number;
  /** Seconds one control-socket command may take. */
  keaApiTimeout: number;
  /** Seconds between reads of kea-dhcp4's configuration through --kea-control-socket. */
  keaConfigInterval: number;
  /** Which leases become reservations (subnetIds above is its subnet rule). */
  policy: PolicyConfig;
  /** Most of the monitor's own reservations per subnet; null: no cap. */
  maxReservationsPerSubnet: number | null;
  /** Decide, log and count; write neither hosts nor discovery records. */
  dryRun: boolean;
  /** Prune own reservations of devices unseen this many seconds, on a timer; null: off. */
  pruneUnseenFor: number | null;
  /** The YAML file the values came from, if any. */
  configFile: string | null;
  /** Seconds between reconciliation runs in database mode (catch-up while connected); 0 turns it off. */
  reconcileInterval: number;
  /** HA pair: monitors sharing this name on one database elect one active writer; null: always active. */
  haGroup: string | null;
  /** Seconds between a standby's lock attempts and the active monitor's lock-connection checks. */
  haInterval: number;
  /** Run (and migrate) on a Kea schema older than 13.0 or newer than the newest tested, with a warning. */
  allowUntestedSchema: boolean;
  redfish: RedfishOptions;
}

/** Probing devices' Redfish service roots (docs/redfish.md). */
export interface RedfishOptions {
  /** Probe https://<address>/redfish/v1 of reserved devices. */
  probe: boolean;
  /** Reserve a device only once it answered as a Redfish service. */
  require: boolean;
  /** One attempt's bound. */
  timeoutMs: number;
  /** How long a silent device is retried. */
  retryForMs: number;
  /** Verify certificates against this CA file; null: no verification. */
  caFile: string | null;
  /** Attempts in flight at once. */
  concurrency: number;
  /** Attempts started per second at most. */
  rate: number;
}

type Kind = 'boolean' | 'string' | 'integer' | 'integers' | 'number' | 'list' | 'choice' | 'strings' | 'duration';

export interface OptionSpec {
  flag: string;
  kind: Kind;
  describe: string;
  default?: string;
  choices?: readonly string[];
  min?: number;
  max?: number;
  /** Only the db subcommands and run share the connection flags. */
  group: 'db' | 'run';
  /** kind 'strings': what separates several values in one string (regexes may hold commas). */
  split?: 'comma' | 'newline';
  /** kind 'strings': checks one value; throws UsageError. */
  check?: (value: string) => unknown;
}

export const ENV_PREFIX = 'KEA_LM_';

/** The one table every flag, its environment variable and its help text come from. */
export const OPTION_SPECS = {
  useDatabaseEvents: {
    flag: 'use-database-events',
    kind: 'boolean',
    group: 'run',
    default: 'false',
    describe: 'Learn about leases from PostgreSQL NOTIFY on lease4 instead of the memfile CSV (needs `db migrate --notify`)',
  },
  dbHost: {
    flag: 'db-host',
    kind: 'string',
    group: 'db',
    default: 'localhost',
    describe:
      'PostgreSQL host, address or unix socket directory; a comma-separated list is tried in order and the first read-write primary is used (like libpq target_session_attrs=read-write)',
  },
  dbPort: {
    flag: 'db-port',
    kind: 'integers',
    group: 'db',
    default: '5432',
    min: 1,
    max: 65535,
    describe: 'PostgreSQL port; one for every host, or a comma-separated list with one port per --db-host entry',
  },
  dbName: { flag: 'db-name', kind: 'string', group: 'db', default: 'kea', describe: "Kea's database" },
  dbUser: { flag: 'db-user', kind: 'string', group: 'db', default: 'kea', describe: 'Database user' },
  dbPassword: {
    flag: 'db-password',
    kind: 'string',
    group: 'db',
    describe:
      'Database password. Shows in the process list: prefer KEA_DB_PASSWORD, --db-password-file or the systemd credential "db-password"',
  },
  dbPasswordFile: { flag: 'db-password-file', kind: 'string', group: 'db', describe: 'File holding the database password' },
  subnetId: {
    flag: 'subnet-id',
    kind: 'list',
    group: 'run',
    min: 1,
    max: 4294967294,
    describe: 'Kea subnet ID to reserve leases in; repeat or comma-separate for several. Default: every subnet',
  },
  outputDir: {
    flag: 'output-dir',
    kind: 'string',
    group: 'run',
    default: '/var/lib/kea/discovery',
    describe: 'Directory for discovery records (<mac>.json)',
  },
  leaseFile: {
    flag: 'lease-file',
    kind: 'string',
    group: 'run',
    default: '/var/lib/kea/kea-leases4.csv',
    describe: "Kea's memfile lease file (file mode)",
  },
  stateFile: {
    flag: 'state-file',
    kind: 'string',
    group: 'run',
    describe: 'Where file mode remembers its read position. Default: <output-dir>/.memfile-position.json',
  },
  pollInterval: {
    flag: 'poll-interval',
    kind: 'number',
    group: 'run',
    default: '5',
    min: 0.05,
    max: 3600,
    describe: 'Seconds between polls where the lease file cannot be watched with inotify',
  },
  logLevel: {
    flag: 'log-level',
    kind: 'choice',
    group: 'db',
    default: 'info',
    choices: ['error', 'warn', 'info', 'debug'],
    describe: 'Log level',
  },
  logFormat: { flag: 'log-format', kind: 'choice', group: 'db', default: 'text', choices: ['text', 'json'], describe: 'Log format' },
  metricsPort: {
    flag: 'metrics-port',
    kind: 'integer',
    group: 'run',
    default: '0',
    min: 0,
    max: 65535,
    describe: 'Serve Prometheus metrics on this port (0: off)',
  },
  metricsHost: { flag: 'metrics-host', kind: 'string', group: 'run', default: '127.0.0.1', describe: 'Address for the metrics endpoint' },
  discoveryEndpoint: {
    flag: 'discovery-endpoint',
    kind: 'boolean',
    group: 'run',
    default: 'true',
    describe: 'Serve the discovery records read-only as NDJSON at GET /discovery on the metrics listener (--no-discovery-endpoint: off)',
  },
  batchSize: {
    flag: 'batch-size',
    kind: 'integer',
    group: 'run',
    default: '1000',
    min: 1,
    max: 10000,
    describe: 'Most leases written in one statement',
  },
  batchLinger: {
    flag: 'batch-linger',
    kind: 'number',
    group: 'run',
    default: '1',
    min: 0,
    max: 100,
    describe:
      'Milliseconds: after a batch of more than one lease, the next starts at least this long after it, so a stream of single-lease commits shares transactions (0: never wait)',
  },
  queueSize: {
    flag: 'queue-size',
    kind: 'integer',
    group: 'run',
    default: '60000',
    min: 1,
    max: 1000000,
    describe: 'Most leases waiting to be written',
  },
  recordBacklog: {
    flag: 'record-backlog',
    kind: 'integer',
    group: 'run',
    default: '100000',
    min: 1,
    max: 1000000,
    describe: 'Most discovery records waiting for the disk; past it the writer takes no new batch until they drain',
  },
  poolSize: {
    flag: 'pool-size',
    kind: 'integer',
    group: 'run',
    default: '2',
    min: 1,
    max: 32,
    describe: 'Database connections for writes and catch-up',
  },
  heartbeatInterval: {
    flag: 'heartbeat-interval',
    kind: 'number',
    group: 'run',
    default: '15',
    min: 0.1,
    max: 3600,
    describe: 'Seconds between checks that the listener is still LISTENing',
  },
  reconnectMaxDelay: {
    flag: 'reconnect-max-delay',
    kind: 'number',
    group: 'run',
    default: '30',
    min: 0.1,
    max: 3600,
    describe: 'Cap, in seconds, of the reconnect backoff',
  },
  dbStatementTimeout: {
    flag: 'db-statement-timeout',
    kind: 'number',
    group: 'db',
    default: '30',
    min: 0,
    max: 86400,
    describe: 'Seconds a statement may run before PostgreSQL cancels it (statement_timeout; 0: no limit)',
  },
  dbLockTimeout: {
    flag: 'db-lock-timeout',
    kind: 'number',
    group: 'db',
    default: '5',
    min: 0,
    max: 86400,
    describe: 'Seconds to wait for a lock before giving up and retrying (lock_timeout; 0: no limit)',
  },
  dbIdleInTransactionTimeout: {
    flag: 'db-idle-in-transaction-timeout',
    kind: 'number',
    group: 'db',
    default: '60',
    min: 0,
    max: 86400,
    describe:
      'Seconds one of our sessions may sit idle inside a transaction before PostgreSQL ends it (idle_in_transaction_session_timeout; 0: no limit)',
  },
  dbQueryTimeout: {
    flag: 'db-query-timeout',
    kind: 'number',
    group: 'db',
    default: '40',
    min: 0,
    max: 86400,
    describe:
      'Seconds without any answer from the server (half-open TCP) before the connection is dropped and the work retried on a new one (0: no limit)',
  },
  dbConnectTimeout: {
    flag: 'db-connect-timeout',
    kind: 'number',
    group: 'db',
    default: '10',
    min: 0.1,
    max: 3600,
    describe: 'Seconds a connection attempt to one host may take',
  },
  reconcileInterval: {
    flag: 'reconcile-interval',
    kind: 'number',
    group: 'run',
    default: '300',
    min: 0,
    max: 86400,
    describe: 'Database mode: seconds between reconciliation runs that find leases without a reservation or a discovery record (0: off)',
  },
  shutdownGrace: {
    flag: 'shutdown-grace',
    kind: 'number',
    group: 'run',
    default: '5',
    min: 0,
    max: 300,
    describe: 'Seconds a stop may spend writing what is already queued',
  },
  writer: {
    flag: 'writer',
    kind: 'choice',
    group: 'run',
    default: 'sql',
    choices: ['sql', 'kea-api'],
    describe: "Where reservations go: Kea's hosts table through SQL, or kea-dhcp4's control socket (host_cmds hook, Kea 3.0+)",
  },
  keaControlSocket: {
    flag: 'kea-control-socket',
    kind: 'string',
    group: 'run',
    describe:
      "kea-dhcp4's UNIX control socket (e.g. /run/kea/kea4-ctrl-socket); required with --writer kea-api. With any writer, Kea's configuration is read through it (config-get) so that no reservation is written where Kea would not honour it",
  },
  keaApiConcurrency: {
    flag: 'kea-api-concurrency',
    kind: 'integer',
    group: 'run',
    default: '4',
    min: 1,
    max: 64,
    describe: 'Commands in flight on the control socket at once (--writer kea-api)',
  },
  keaApiTimeout: {
    flag: 'kea-api-timeout',
    kind: 'number',
    group: 'run',
    default: '10',
    min: 0.1,
    max: 600,
    describe: 'Seconds one control-socket command may take (--writer kea-api, and the reads of --kea-config-interval)',
  },
  keaConfigInterval: {
    flag: 'kea-config-interval',
    kind: 'number',
    group: 'run',
    default: '300',
    min: 1,
    max: 86400,
    describe:
      "With --kea-control-socket (any writer): seconds between reads of kea-dhcp4's configuration (config-get); leases in subnets where Kea would not honour a reservation are not reserved",
  },
  allowMacPrefix: {
    flag: 'allow-mac-prefix',
    kind: 'strings',
    group: 'run',
    split: 'comma',
    check: parseMacPrefix,
    describe: 'Reserve only MACs starting with this prefix (1-6 octets, e.g. 0c:c4:7a); repeatable. Default: any',
  },
  denyMacPrefix: {
    flag: 'deny-mac-prefix',
    kind: 'strings',
    group: 'run',
    split: 'comma',
    check: parseMacPrefix,
    describe: 'Never reserve MACs starting with this prefix; repeatable; wins over every allow rule',
  },
  allowHostname: {
    flag: 'allow-hostname',
    kind: 'strings',
    group: 'run',
    split: 'newline',
    check: compileHostnamePattern,
    describe: 'Reserve only hostnames matching this regular expression (case-insensitive, anchored only by ^ and $); repeatable',
  },
  denyHostname: {
    flag: 'deny-hostname',
    kind: 'strings',
    group: 'run',
    split: 'newline',
    check: compileHostnamePattern,
    describe: 'Never reserve hostnames matching this regular expression; repeatable; wins over every allow rule',
  },
  allowAddress: {
    flag: 'allow-address',
    kind: 'strings',
    group: 'run',
    split: 'comma',
    check: parseCidr,
    describe: 'Reserve only addresses inside this CIDR range (e.g. 10.0.200.0/26); repeatable. Default: any',
  },
  maxReservationsPerSubnet: {
    flag: 'max-reservations-per-subnet',
    kind: 'integer',
    group: 'run',
    min: 0,
    max: 4294967295,
    describe: "At most this many of the monitor's own reservations per subnet; past it new devices are not reserved. Default: no cap",
  },
  dryRun: {
    flag: 'dry-run',
    kind: 'boolean',
    group: 'run',
    default: 'false',
    describe: 'Make every decision, log and count it, but write neither hosts nor discovery records',
  },
  pruneUnseenFor: {
    flag: 'prune-unseen-for',
    kind: 'duration',
    group: 'run',
    describe: "Every hour, remove the monitor's own reservations of devices with no live lease for this long (e.g. 90d). Default: off",
  },
  config: {
    flag: 'config',
    kind: 'string',
    group: 'run',
    describe: 'YAML file whose keys are the long flag names of `run` (flags and KEA_LM_* variables override it)',
  },
  haGroup: {
    flag: 'ha-group',
    kind: 'string',
    group: 'run',
    describe:
      'Run as one of an HA pair: monitors with the same group name on one database elect one active writer (PostgreSQL advisory lock); the others stand by. Default: off (always active)',
  },
  haInterval: {
    flag: 'ha-interval',
    kind: 'number',
    group: 'run',
    default: '2',
    min: 0.1,
    max: 60,
    describe: "Seconds between a standby's attempts to take over and the active monitor's checks of its lock connection",
  },
  allowUntestedSchema: {
    flag: 'allow-untested-schema',
    kind: 'boolean',
    group: 'db',
    default: 'false',
    describe: 'Start (and migrate) even on a Kea schema older than 13.0 or newer than the newest tested (29.0, Kea 3.0.4), with a warning',
  },
  redfishProbe: {
    flag: 'redfish-probe',
    kind: 'boolean',
    group: 'run',
    default: 'false',
    describe:
      'After a reservation is written, read https://<address>/redfish/v1 (no credentials) and put the Redfish version, UUID, vendor and product in the discovery record',
  },
  requireRedfish: {
    flag: 'require-redfish',
    kind: 'boolean',
    group: 'run',
    default: 'false',
    describe: 'Reserve a device only once it has answered as a Redfish service (needs --redfish-probe); until then its lease is held back',
  },
  redfishTimeout: {
    flag: 'redfish-timeout',
    kind: 'number',
    group: 'run',
    default: '5',
    min: 0.1,
    max: 120,
    describe: 'Seconds one Redfish probe attempt may take (connect, TLS and answer)',
  },
  redfishRetryFor: {
    flag: 'redfish-retry-for',
    kind: 'duration',
    group: 'run',
    default: '10m',
    describe: 'How long a device that does not answer yet is retried, with backoff, before it counts as absent or unreachable',
  },
  redfishCa: {
    flag: 'redfish-ca',
    kind: 'string',
    group: 'run',
    describe:
      "Verify Redfish services' certificates against this CA file (PEM). Default: no verification (BMCs' certificates are self-signed)",
  },
  redfishConcurrency: {
    flag: 'redfish-concurrency',
    kind: 'integer',
    group: 'run',
    default: '8',
    min: 1,
    max: 256,
    describe: 'Redfish probe attempts in flight at once',
  },
  redfishRate: {
    flag: 'redfish-rate',
    kind: 'number',
    group: 'run',
    default: '20',
    min: 0.1,
    max: 1000,
    describe: 'Redfish probe attempts started per second at most, so a burst of new devices leaves the reservation writer its CPU',
  },
} as const satisfies Record<string, OptionSpec>;

export type OptionKey = keyof typeof OPTION_SPECS;
export type RawValues = Partial<Record<OptionKey, unknown>>;

/** What parseValue makes of each kind: the option table decides each value's type. */
type KindValue<K extends Kind> = K extends 'boolean'
  ? boolean
  : K extends 'integer' | 'number' | 'duration'
    ? number
    : K extends 'integers' | 'list'
      ? number[]
      : K extends 'strings'
        ? string[]
        : string;
type SpecValue<S> = S extends { kind: 'choice'; choices: readonly (infer C)[] }
  ? C
  : S extends { kind: infer K extends Kind }
    ? KindValue<K>
    : never;
/** Every option's value after defaults, file, environment and flags; undefined only where there is no default. */
export type Values = {
  [K in OptionKey]: (typeof OPTION_SPECS)[K] extends { default: string }
    ? SpecValue<(typeof OPTION_SPECS)[K]>
    : SpecValue<(typeof OPTION_SPECS)[K]> | undefined;
};

export function envName(spec: OptionSpec): string {
  return ENV_PREFIX + spec.flag.toUpperCase().replace(/-/g, '_');
}

type Parsed = boolean | string | number | number[] | string[] | undefined;

/** A comma-separated host list and its ports, checked like libpq does (one port, or one per host). */
function hostList(hosts: string, ports: number[]): { host: string; port: number; ports?: number[] } {
  const list = hosts.split(',').map((h) => h.trim());
  if (list.some((h) => h === '')) throw new UsageError(`--db-host: ${JSON.stringify(hosts)} has an empty entry`);
  if (ports.length !== 1 && ports.length !== list.length) {
    throw new UsageError(`--db-port: ${ports.length} ports for ${list.length} hosts: give one port, or one per host`);
  }
  return { host: list.join(','), port: ports[0], ...(ports.length > 1 ? { ports } : {}) };
}

function parseValue(key: OptionKey, raw: unknown, origin: string): Parsed {
  const spec: OptionSpec = OPTION_SPECS[key];
  // A flag or variable was typed as text (yargs may have made it a number); a config value is shown as written.
  const shown = (v: unknown): string => JSON.stringify(typeof v === 'number' && !origin.includes(': ') ? String(v) : v);
  const bad = (why: string, value: unknown = raw): never => {
    throw new UsageError(`${origin}: ${shown(value)} ${why}`);
  };
  const range = spec.min !== undefined && spec.max !== undefined ? ` from ${spec.min} to ${spec.max}` : '';
  const inRange = (n: number, value: unknown = raw): number => {
    if (spec.min !== undefined && n < spec.min) bad(`is below the minimum ${spec.min}`, value);
    if (spec.max !== undefined && n > spec.max) bad(`is above the maximum ${spec.max}`, value);
    return n;
  };
  const toInteger = (v: unknown): number => {
    const s = String(v).trim();
    // kind 'list' is --subnet-id, Kea's subnet ids.
    if (!/^\d+$/.test(s)) bad(spec.kind === 'list' ? `is not a subnet id (a whole number${range})` : `is not a whole number${range}`, v);
    return inRange(Number(s), v);
  };
  switch (spec.kind) {
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
      return bad('is not a boolean (true/false)');
    }
    case 'string': {
      const s = String(raw);
      if (s.length === 0) bad('must not be empty');
      if (s.includes('\0')) bad('contains a NUL byte');
      return s;
    }
    case 'integer':
      return toInteger(raw);
    case 'integers': {
      // Ordered and not deduplicated: one value per host of a list.
      const parts = String(raw)
        .split(',')
        .map((p) => p.trim());
      if (parts.some((p) => p === '')) bad('has an empty entry');
      return parts.map(toInteger);
    }
    case 'number': {
      const s = String(raw).trim();
      if (!/^\d+(\.\d+)?$/.test(s)) bad(`is not a number${range}`);
      return inRange(Number(s));
    }
    case 'list': {
      const parts = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => String(v).split(','));
      return [
        ...new Set(
          parts
            .map((p) => p.trim())
            .filter((p) => p !== '')
            .map(toInteger),
        ),
      ];
    }
    case 'choice': {
      const s = String(raw).trim().toLowerCase();
      if (!spec.choices?.includes(s)) bad(`is not one of ${spec.choices?.join(', ')}`);
      return s;
    }
    case 'strings': {
      const sep = spec.split === 'newline' ? /\r?\n/ : /[\s,]+/;
      const parts = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => String(v).split(sep)).filter((p) => p.trim() !== '');
      for (const p of parts) {
        try {
          spec.check?.(p);
        } catch (err) {
          throw new UsageError(`${origin}: ${(err as Error).message}`);
        }
      }
      return [...new Set(parts)];
    }
    case 'duration':
      try {
        return parseDuration(String(raw));
      } catch (err) {
        throw new UsageError(`${origin}: ${(err as Error).message}`);
      }
  }
}

/** Values read from a config file (see config-file.ts), and where they came from, for messages. */
export interface ConfigValues {
  file: string;
  values: RawValues;
}

/** Checks one value as it would be checked from a flag; `origin` names it in the error. */
export function checkValue(key: OptionKey, raw: unknown, origin: string): void {
  parseValue(key, raw, origin);
}

/** Defaults, overridden by the config file, by KEA_LM_* variables, then by flags given on the command line. */
export function resolveValues(argv: RawValues, env: NodeJS.ProcessEnv, config: ConfigValues | null = null): Values {
  const out = {} as Record<OptionKey, Parsed>;
  for (const key of Object.keys(OPTION_SPECS) as OptionKey[]) {
    const spec: OptionSpec = OPTION_SPECS[key];
    const fromArgv = argv[key];
    const fromEnv = env[envName(spec)];
    const fromConfig = config?.values[key];
    if (fromArgv !== undefined) out[key] = parseValue(key, fromArgv, `--${spec.flag}`);
    else if (fromEnv !== undefined) out[key] = parseValue(key, fromEnv, envName(spec));
    else if (fromConfig !== undefined) out[key] = parseValue(key, fromConfig, `${config?.file}: ${spec.flag}`);
    else if (spec.default !== undefined) out[key] = parseValue(key, spec.default, `default of --${spec.flag}`);
    else out[key] = undefined;
  }
  // parseValue returns each kind's type (KindValue), so this is the one place the two are joined.
  return out as Values;
}

export interface PasswordSources {
  /** Called when the password came from the command line. */
  onInsecureFlag?: () => void;
}

function readSecretFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new UsageError(`${what}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** First of: --db-password-file, --db-password, KEA_DB_PASSWORD, systemd credential "db-password". */
export function resolvePassword(
  values: Pick<Values, 'dbPasswordFile' | 'dbPassword'>,
  env: NodeJS.ProcessEnv,
  hooks: PasswordSources = {},
): string | undefined {
  if (typeof values.dbPasswordFile === 'string') return readSecretFile(values.dbPasswordFile, '--db-password-file');
  if (typeof values.dbPassword === 'string') {
    hooks.onInsecureFlag?.();
    return values.dbPassword;
  }
  if (env.KEA_DB_PASSWORD !== undefined && env.KEA_DB_PASSWORD !== '') return env.KEA_DB_PASSWORD;
  if (env.CREDENTIALS_DIRECTORY) {
    const path = join(env.CREDENTIALS_DIRECTORY, 'db-password');
    try {
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch {
      // No such credential: fall through to pg's own ~/.pgpass handling.
    }
  }
  return undefined;
}

/** Where --config points, if anywhere (argv, then KEA_LM_CONFIG). */
export function configPath(argv: RawValues, env: NodeJS.ProcessEnv): string | null {
  const raw = argv.config ?? env[envName(OPTION_SPECS.config)];
  return raw === undefined
    ? null
    : (parseValue('config', raw, argv.config !== undefined ? '--config' : envName(OPTION_SPECS.config)) as string);
}

export function buildOptions(
  argv: RawValues,
  env: NodeJS.ProcessEnv = process.env,
  hooks: PasswordSources = {},
  config: ConfigValues | null = null,
): Options {
  const v = resolveValues(argv, env, config);
  const outputDir = v.outputDir;
  const opts: Options = {
    useDatabaseEvents: v.useDatabaseEvents,
    db: {
      ...hostList(v.dbHost, v.dbPort),
      database: v.dbName,
      user: v.dbUser,
      password: resolvePassword(v, env, hooks),
      timeouts: {
        statementMs: Math.round(v.dbStatementTimeout * 1000),
        lockMs: Math.round(v.dbLockTimeout * 1000),
        idleInTransactionMs: Math.round(v.dbIdleInTransactionTimeout * 1000),
        queryMs: Math.round(v.dbQueryTimeout * 1000),
        connectMs: Math.round(v.dbConnectTimeout * 1000),
      },
    },
    subnetIds: v.subnetId ?? [],
    outputDir,
    leaseFile: v.leaseFile,
    stateFile: v.stateFile ?? join(outputDir, '.memfile-position.json'),
    pollInterval: v.pollInterval,
    logLevel: v.logLevel,
    logFormat: v.logFormat,
    metricsPort: v.metricsPort,
    metricsHost: v.metricsHost,
    discoveryEndpoint: v.discoveryEndpoint,
    batchSize: v.batchSize,
    batchLinger: v.batchLinger,
    queueSize: v.queueSize,
    recordBacklog: v.recordBacklog,
    poolSize: v.poolSize,
    heartbeatInterval: v.heartbeatInterval,
    reconnectMaxDelay: v.reconnectMaxDelay,
    shutdownGrace: v.shutdownGrace,
    writer: v.writer,
    keaControlSocket: v.keaControlSocket ?? null,
    keaApiConcurrency: v.keaApiConcurrency,
    keaApiTimeout: v.keaApiTimeout,
    keaConfigInterval: v.keaConfigInterval,
    policy: {
      subnetIds: v.subnetId ?? [],
      allowMacPrefix: v.allowMacPrefix ?? [],
      denyMacPrefix: v.denyMacPrefix ?? [],
      allowHostname: v.allowHostname ?? [],
      denyHostname: v.denyHostname ?? [],
      allowAddress: v.allowAddress ?? [],
    },
    maxReservationsPerSubnet: v.maxReservationsPerSubnet ?? null,
    dryRun: v.dryRun,
    pruneUnseenFor: v.pruneUnseenFor ?? null,
    configFile: config?.file ?? null,
    reconcileInterval: v.reconcileInterval,
    haGroup: v.haGroup ?? null,
    haInterval: v.haInterval,
    allowUntestedSchema: v.allowUntestedSchema,
    redfish: {
      probe: v.redfishProbe,
      require: v.requireRedfish,
      timeoutMs: Math.round(v.redfishTimeout * 1000),
      retryForMs: v.redfishRetryFor * 1000,
      caFile: v.redfishCa ?? null,
      concurrency: v.redfishConcurrency,
      rate: v.redfishRate,
    },
  };
  checkRedfish(opts);
  if (opts.writer === 'kea-api') {
    if (opts.keaControlSocket === null)
      throw new UsageError("--writer kea-api needs --kea-control-socket PATH (kea-dhcp4's control socket)");
    // These act on the hosts table through SQL; the API writer does not have them (yet).
    // --ha-group: only SQL writes can be fenced by the HA lock (docs/ha.md).
    const sqlOnly = [
      ['--dry-run', opts.dryRun],
      ['--max-reservations-per-subnet', opts.maxReservationsPerSubnet !== null],
      ['--prune-unseen-for', opts.pruneUnseenFor !== null],
      ['--ha-group', opts.haGroup !== null],
    ] as const;
    for (const [flag, set] of sqlOnly) if (set) throw new UsageError(`${flag} works only with --writer sql`);
  }
  if (opts.queueSize < opts.batchSize) {
    throw new UsageError(`--queue-size (${opts.queueSize}) must be at least --batch-size (${opts.batchSize})`);
  }
  if (opts.recordBacklog < opts.batchSize) {
    throw new UsageError(`--record-backlog (${opts.recordBacklog}) must be at least --batch-size (${opts.batchSize})`);
  }
  return opts;
}

function checkRedfish(o: Options): void {
  const r = o.redfish;
  if (r.require && !r.probe) throw new UsageError('--require-redfish needs --redfish-probe (it reserves only devices the probe found)');
  if (r.caFile !== null && !r.probe) throw new UsageError('--redfish-ca works only with --redfish-probe');
  if (r.probe && o.dryRun)
    throw new UsageError('--redfish-probe does not work with --dry-run (a dry run connects to no device); use `plan`');
  if (r.caFile !== null && !readSecretFile(r.caFile, '--redfish-ca').includes('-----BEGIN CERTIFICATE-----')) {
    throw new UsageError(`--redfish-ca: ${r.caFile} holds no PEM certificate`);
  }
}

/** The options as they may be logged: no password, only whether one is set. */
export function describeOptions(o: Options): Record<string, unknown> {
  const { password, ...db } = o.db;
  return { ...o, db: { ...db, password: password === undefined ? 'unset' : 'set' } };
}
