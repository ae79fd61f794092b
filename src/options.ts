import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './errors';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'text' | 'json';

/** How to reach Kea's PostgreSQL database. */
export interface DbOptions {
  /** Host name, address, or a unix socket directory (starts with "/"). */
  host: string;
  port: number;
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
  /** Most leases written in one statement. */
  batchSize: number;
  /** Most leases waiting to be written; beyond it sources wait (file) or fall back to a catch-up (database). */
  queueSize: number;
  /** Write pool size. */
  poolSize: number;
  /** Seconds between listener health checks (pg_listening_channels()). */
  heartbeatInterval: number;
  /** Cap, in seconds, of the reconnect backoff. */
  reconnectMaxDelay: number;
  /** Seconds a graceful stop may spend finishing queued work. */
  shutdownGrace: number;
  /** HA pair: monitors sharing this name on one database elect one active writer; null: always active. */
  haGroup: string | null;
  /** Seconds between a standby's lock attempts and the active monitor's lock-connection checks. */
  haInterval: number;
}

type Kind = 'boolean' | 'string' | 'integer' | 'number' | 'list' | 'choice';

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
}

export const ENV_PREFIX = 'KEA_LM_';

/** The one table every flag, its environment variable and its help text come from. */
export const OPTION_SPECS = {
  useDatabaseEvents: { flag: 'use-database-events', kind: 'boolean', group: 'run', default: 'false',
    describe: 'Learn about leases from PostgreSQL NOTIFY on lease4 instead of the memfile CSV (needs `db migrate --notify`)' },
  dbHost: { flag: 'db-host', kind: 'string', group: 'db', default: 'localhost',
    describe: 'PostgreSQL host, address or unix socket directory' },
  dbPort: { flag: 'db-port', kind: 'integer', group: 'db', default: '5432', min: 1, max: 65535, describe: 'PostgreSQL port' },
  dbName: { flag: 'db-name', kind: 'string', group: 'db', default: 'kea', describe: "Kea's database" },
  dbUser: { flag: 'db-user', kind: 'string', group: 'db', default: 'kea', describe: 'Database user' },
  dbPassword: { flag: 'db-password', kind: 'string', group: 'db',
    describe: 'Database password. Shows in the process list: prefer KEA_DB_PASSWORD, --db-password-file or the systemd credential "db-password"' },
  dbPasswordFile: { flag: 'db-password-file', kind: 'string', group: 'db', describe: 'File holding the database password' },
  subnetId: { flag: 'subnet-id', kind: 'list', group: 'run', min: 1, max: 4294967294,
    describe: 'Kea subnet ID to reserve leases in; repeat or comma-separate for several. Default: every subnet' },
  outputDir: { flag: 'output-dir', kind: 'string', group: 'run', default: '/var/lib/kea/discovery',
    describe: 'Directory for discovery records (<mac>.json)' },
  leaseFile: { flag: 'lease-file', kind: 'string', group: 'run', default: '/var/lib/kea/kea-leases4.csv',
    describe: "Kea's memfile lease file (file mode)" },
  stateFile: { flag: 'state-file', kind: 'string', group: 'run',
    describe: 'Where file mode remembers its read position. Default: <output-dir>/.memfile-position.json' },
  pollInterval: { flag: 'poll-interval', kind: 'number', group: 'run', default: '5', min: 0.05, max: 3600,
    describe: 'Seconds between polls where the lease file cannot be watched with inotify' },
  logLevel: { flag: 'log-level', kind: 'choice', group: 'db', default: 'info', choices: ['error', 'warn', 'info', 'debug'],
    describe: 'Log level' },
  logFormat: { flag: 'log-format', kind: 'choice', group: 'db', default: 'text', choices: ['text', 'json'],
    describe: 'Log format' },
  metricsPort: { flag: 'metrics-port', kind: 'integer', group: 'run', default: '0', min: 0, max: 65535,
    describe: 'Serve Prometheus metrics on this port (0: off)' },
  metricsHost: { flag: 'metrics-host', kind: 'string', group: 'run', default: '127.0.0.1', describe: 'Address for the metrics endpoint' },
  batchSize: { flag: 'batch-size', kind: 'integer', group: 'run', default: '1000', min: 1, max: 10000,
    describe: 'Most leases written in one statement' },
  queueSize: { flag: 'queue-size', kind: 'integer', group: 'run', default: '20000', min: 1, max: 1000000,
    describe: 'Most leases waiting to be written' },
  poolSize: { flag: 'pool-size', kind: 'integer', group: 'run', default: '2', min: 1, max: 32,
    describe: 'Database connections for writes and catch-up' },
  heartbeatInterval: { flag: 'heartbeat-interval', kind: 'number', group: 'run', default: '15', min: 0.1, max: 3600,
    describe: 'Seconds between checks that the listener is still LISTENing' },
  reconnectMaxDelay: { flag: 'reconnect-max-delay', kind: 'number', group: 'run', default: '30', min: 0.1, max: 3600,
    describe: 'Cap, in seconds, of the reconnect backoff' },
  shutdownGrace: { flag: 'shutdown-grace', kind: 'number', group: 'run', default: '5', min: 0, max: 300,
    describe: 'Seconds a stop may spend writing what is already queued' },
  haGroup: { flag: 'ha-group', kind: 'string', group: 'run',
    describe: 'Run as one of an HA pair: monitors with the same group name on one database elect one active writer (PostgreSQL advisory lock); the others stand by. Default: off (always active)' },
  haInterval: { flag: 'ha-interval', kind: 'number', group: 'run', default: '2', min: 0.1, max: 60,
    describe: 'Seconds between a standby\'s attempts to take over and the active monitor\'s checks of its lock connection' },
} as const satisfies Record<string, OptionSpec>;

export type OptionKey = keyof typeof OPTION_SPECS;
export type RawValues = Partial<Record<OptionKey, unknown>>;

export function envName(spec: OptionSpec): string {
  return ENV_PREFIX + spec.flag.toUpperCase().replace(/-/g, '_');
}

type Parsed = boolean | string | number | number[] | undefined;

function parseValue(key: OptionKey, raw: unknown, origin: string): Parsed {
  const spec: OptionSpec = OPTION_SPECS[key];
  const bad = (why: string): never => {
    throw new UsageError(`${origin}: ${JSON.stringify(raw)} ${why}`);
  };
  const inRange = (n: number): number => {
    if (spec.min !== undefined && n < spec.min) bad(`is below the minimum ${spec.min}`);
    if (spec.max !== undefined && n > spec.max) bad(`is above the maximum ${spec.max}`);
    return n;
  };
  const toInteger = (v: unknown): number => {
    const s = String(v).trim();
    if (!/^\d+$/.test(s)) bad('is not a whole number');
    return inRange(Number(s));
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
    case 'number': {
      const s = String(raw).trim();
      if (!/^\d+(\.\d+)?$/.test(s)) bad('is not a number');
      return inRange(Number(s));
    }
    case 'list': {
      const parts = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => String(v).split(','));
      return [...new Set(parts.map((p) => p.trim()).filter((p) => p !== '').map(toInteger))];
    }
    case 'choice': {
      const s = String(raw).trim().toLowerCase();
      if (!spec.choices?.includes(s)) bad(`is not one of ${spec.choices?.join(', ')}`);
      return s;
    }
  }
}

/** Defaults, overridden by KEA_LM_* variables, overridden by flags given on the command line. */
export function resolveValues(argv: RawValues, env: NodeJS.ProcessEnv): Record<OptionKey, Parsed> {
  const out = {} as Record<OptionKey, Parsed>;
  for (const key of Object.keys(OPTION_SPECS) as OptionKey[]) {
    const spec: OptionSpec = OPTION_SPECS[key];
    const fromArgv = argv[key];
    const fromEnv = env[envName(spec)];
    if (fromArgv !== undefined) out[key] = parseValue(key, fromArgv, `--${spec.flag}`);
    else if (fromEnv !== undefined) out[key] = parseValue(key, fromEnv, envName(spec));
    else if (spec.default !== undefined) out[key] = parseValue(key, spec.default, `default of --${spec.flag}`);
    else out[key] = undefined;
  }
  return out;
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
  values: Record<OptionKey, Parsed>,
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

export function buildOptions(argv: RawValues, env: NodeJS.ProcessEnv = process.env, hooks: PasswordSources = {}): Options {
  const v = resolveValues(argv, env);
  const outputDir = v.outputDir as string;
  const opts: Options = {
    useDatabaseEvents: v.useDatabaseEvents as boolean,
    db: {
      host: v.dbHost as string,
      port: v.dbPort as number,
      database: v.dbName as string,
      user: v.dbUser as string,
      password: resolvePassword(v, env, hooks),
    },
    subnetIds: (v.subnetId as number[] | undefined) ?? [],
    outputDir,
    leaseFile: v.leaseFile as string,
    stateFile: (v.stateFile as string | undefined) ?? join(outputDir, '.memfile-position.json'),
    pollInterval: v.pollInterval as number,
    logLevel: v.logLevel as LogLevel,
    logFormat: v.logFormat as LogFormat,
    metricsPort: v.metricsPort as number,
    metricsHost: v.metricsHost as string,
    batchSize: v.batchSize as number,
    queueSize: v.queueSize as number,
    poolSize: v.poolSize as number,
    heartbeatInterval: v.heartbeatInterval as number,
    reconnectMaxDelay: v.reconnectMaxDelay as number,
    shutdownGrace: v.shutdownGrace as number,
    haGroup: (v.haGroup as string | undefined) ?? null,
    haInterval: v.haInterval as number,
  };
  if (opts.queueSize < opts.batchSize) {
    throw new UsageError(`--queue-size (${opts.queueSize}) must be at least --batch-size (${opts.batchSize})`);
  }
  return opts;
}

/** The options as they may be logged: no password, only whether one is set. */
export function describeOptions(o: Options): Record<string, unknown> {
  const { password, ...db } = o.db;
  return { ...o, db: { ...db, password: password === undefined ? 'unset' : 'set' } };
}
