/**
 * Which shared flags (OPTION_SPECS) each command takes, and how --help shows them. A command
 * declares only the flags it uses, so yargs' strict mode refuses any other with exit 2: no command
 * can accept a flag and ignore it.
 */
import type { Argv } from 'yargs';
import { OPTION_SPECS, OptionKey, Options, OptionSpec } from './options';

export type CommandName =
  | 'run'
  | 'db migrate'
  | 'db rollback'
  | 'db status'
  | 'plan'
  | 'reservations list'
  | 'reservations adopt'
  | 'reservations prune'
  | 'reservations purge';

const DB: OptionKey[] = [
  'dbHost',
  'dbPort',
  'dbName',
  'dbUser',
  'dbPasswordFile',
  'dbPassword',
  'dbConnectTimeout',
  'dbStatementTimeout',
  'dbLockTimeout',
  'dbIdleInTransactionTimeout',
  'dbQueryTimeout',
];
const SOURCE: OptionKey[] = ['useDatabaseEvents', 'leaseFile'];
const SCOPE: OptionKey[] = ['subnetId', 'allowMacPrefix', 'denyMacPrefix', 'allowHostname', 'denyHostname', 'allowAddress'];

/** Help sections of the shared flags, in the order --help shows them. */
const SECTIONS = {
  source: 'Lease source:',
  output: 'Discovery records:',
  selection: 'Selection policy:',
  writer: 'Writer:',
  redfish: 'Redfish identity:',
  database: 'Database:',
  ha: 'HA pair:',
  logging: 'Logging and metrics:',
  config: 'Configuration:',
} as const;

// Named once: the password flags are among these rows, and a quoted value beside them reads like a secret to scanners.
const DATABASE = 'database';

const SECTION_OF: Record<OptionKey, keyof typeof SECTIONS> = {
  useDatabaseEvents: 'source',
  leaseFile: 'source',
  stateFile: 'source',
  pollInterval: 'source',
  outputDir: 'output',
  reconcileInterval: 'source',
  subnetId: 'selection',
  allowMacPrefix: 'selection',
  denyMacPrefix: 'selection',
  allowHostname: 'selection',
  denyHostname: 'selection',
  allowAddress: 'selection',
  maxReservationsPerSubnet: 'selection',
  dryRun: 'selection',
  pruneUnseenFor: 'selection',
  writer: 'writer',
  keaControlSocket: 'writer',
  keaApiConcurrency: 'writer',
  keaApiTimeout: 'writer',
  keaConfigInterval: 'writer',
  batchSize: 'writer',
  batchLinger: 'writer',
  queueSize: 'writer',
  recordBacklog: 'writer',
  poolSize: 'writer',
  shutdownGrace: 'writer',
  dbHost: DATABASE,
  dbPort: DATABASE,
  dbName: DATABASE,
  dbUser: DATABASE,
  dbPassword: DATABASE,
  dbPasswordFile: DATABASE,
  dbStatementTimeout: DATABASE,
  dbLockTimeout: DATABASE,
  dbIdleInTransactionTimeout: DATABASE,
  dbQueryTimeout: DATABASE,
  dbConnectTimeout: DATABASE,
  heartbeatInterval: DATABASE,
  reconnectMaxDelay: DATABASE,
  allowUntestedSchema: DATABASE,
  haGroup: 'ha',
  haInterval: 'ha',
  logLevel: 'logging',
  logFormat: 'logging',
  metricsPort: 'logging',
  metricsHost: 'logging',
  redfishProbe: 'redfish',
  requireRedfish: 'redfish',
  redfishTimeout: 'redfish',
  redfishRetryFor: 'redfish',
  redfishCa: 'redfish',
  redfishConcurrency: 'redfish',
  redfishRate: 'redfish',
  discoveryEndpoint: 'logging',
  config: 'config',
};

export interface CommandFlags {
  /** The shared flags it reads. */
  keys: readonly OptionKey[];
  /** Of those, the ones read from the command line only, never from the file or the environment. */
  argvOnly: readonly OptionKey[];
  /** Heading of the scope flags, when the command applies them to rows rather than to leases. */
  scopeTitle?: string;
}

const ROW_SCOPE = "Scope: only the monitor's rows these select (command line only; the config file's rules do not apply):";

export const COMMAND_FLAGS: Record<CommandName, CommandFlags> = {
  run: { keys: Object.keys(OPTION_SPECS) as OptionKey[], argvOnly: [] },
  'db migrate': { keys: ['config', ...DB, 'allowUntestedSchema'], argvOnly: [] },
  'db rollback': { keys: ['config', ...DB], argvOnly: [] },
  'db status': { keys: ['config', ...DB, 'allowUntestedSchema'], argvOnly: [] },
  // plan reads kea-dhcp4's configuration with --kea-control-socket, judged for the configured writer,
  // and with --require-redfish the probe results in the discovery records.
  plan: {
    keys: [
      'config',
      ...SOURCE,
      ...SCOPE,
      'maxReservationsPerSubnet',
      'writer',
      'keaControlSocket',
      'keaApiTimeout',
      'outputDir',
      'redfishProbe',
      'requireRedfish',
      // Malformed lease file rows are logged as the daemon logs them.
      'logLevel',
      'logFormat',
      ...DB,
    ],
    argvOnly: [],
  },
  'reservations list': { keys: ['config', ...SOURCE, ...DB], argvOnly: [] },
  'reservations adopt': { keys: ['config', 'outputDir', ...DB], argvOnly: [] },
  'reservations prune': { keys: ['config', ...SOURCE, 'outputDir', ...SCOPE, ...DB], argvOnly: SCOPE, scopeTitle: ROW_SCOPE },
  'reservations purge': { keys: ['config', 'outputDir', ...SCOPE, ...DB], argvOnly: SCOPE, scopeTitle: ROW_SCOPE },
};

/** A flag of one command only (--json, --dry-run, ...): read from its command line only. */
export interface OwnFlag {
  flag: string;
  describe: string;
  /** The value's placeholder in --help; absent for a boolean. */
  value?: string;
  required?: boolean;
}

const JSON_LINES: OwnFlag = { flag: 'json', describe: 'One JSON object per line; the last line sums up' };
const JSON_ONE: OwnFlag = { flag: 'json', describe: 'Print one JSON line' };
const DRY_RUN_DB: OwnFlag = { flag: 'dry-run', describe: 'Report what would change; change nothing' };
const DRY_RUN_ROWS: OwnFlag = {
  flag: 'dry-run',
  describe: 'Print the reservations and discovery records the real run would remove, exactly; change nothing',
};
const FORCE: OwnFlag = {
  flag: 'force',
  describe: 'Go ahead although a monitor is running on this database (it will reserve devices with a live lease again)',
};

export const OWN_FLAGS: Record<CommandName, readonly OwnFlag[]> = {
  run: [],
  'db migrate': [{ flag: 'notify', describe: 'Also install the lease4 NOTIFY trigger' }, DRY_RUN_DB, JSON_ONE],
  'db rollback': [
    { flag: 'notify-only', describe: "Drop only the NOTIFY trigger and its functions; keep the migrations' version table" },
    { flag: 'drop-constraint', describe: 'Also drop the constraint `db migrate` added where Kea had no unique index' },
    DRY_RUN_DB,
    JSON_ONE,
  ],
  'db status': [JSON_ONE],
  plan: [JSON_LINES],
  'reservations list': [JSON_LINES],
  'reservations adopt': [{ flag: 'dry-run', describe: 'Print what would be adopted; change nothing' }, JSON_LINES],
  'reservations prune': [
    { flag: 'unseen-for', value: 'duration', required: true, describe: 'How long without a live lease, e.g. 90d, 12h, 0s' },
    DRY_RUN_ROWS,
    FORCE,
    JSON_LINES,
  ],
  'reservations purge': [DRY_RUN_ROWS, FORCE, JSON_LINES],
};

/** The selection rules as a command that removes rows reads them. */
const ROW_SCOPE_DESCRIBE: Partial<Record<OptionKey, string>> = {
  subnetId: 'Only rows in this Kea subnet; repeat or comma-separate for several. Default: every subnet',
  allowMacPrefix: 'Only rows whose MAC starts with this prefix (1-6 octets)',
  denyMacPrefix: 'Keep rows whose MAC starts with this prefix; wins over every other rule',
  allowHostname: 'Only rows whose hostname matches this regular expression (case-insensitive)',
  denyHostname: 'Keep rows whose hostname matches this regular expression; wins over every other rule',
  allowAddress: 'Only rows whose address is inside this CIDR range',
};

export interface SharedSection {
  title: string;
  keys: OptionKey[];
  /** Wording that replaces the daemon's for these keys. */
  describe?: Partial<Record<OptionKey, string>>;
}

/** A command's shared flags by help section, in the order --help shows them. */
export function sharedSections(name: CommandName): SharedSection[] {
  const c = COMMAND_FLAGS[name];
  const out: SharedSection[] = [];
  for (const section of Object.keys(SECTIONS) as Array<keyof typeof SECTIONS>) {
    const keys = c.keys.filter((k) => SECTION_OF[k] === section);
    if (keys.length === 0) continue;
    const rowScope = section === 'selection' && c.scopeTitle !== undefined;
    out.push({ title: rowScope ? (c.scopeTitle ?? '') : SECTIONS[section], keys, ...(rowScope ? { describe: ROW_SCOPE_DESCRIBE } : {}) });
  }
  return out;
}

// Numbers stay numbers for yargs only so a NaN can be reported as typed (cli.ts typedValue).
function yargsType(kind: OptionSpec['kind']): 'boolean' | 'array' | 'number' | 'string' {
  if (kind === 'boolean') return 'boolean';
  if (kind === 'list' || kind === 'strings') return 'array';
  return kind === 'integer' || kind === 'number' ? 'number' : 'string';
}

/** Declares a command's own flags, then its shared ones (help is rendered by help.ts). */
export function declareFlags(y: Argv, name: CommandName): Argv {
  for (const f of OWN_FLAGS[name]) {
    y.option(f.flag, {
      type: f.value ? 'string' : 'boolean',
      requiresArg: Boolean(f.value),
      ...(f.required ? { demandOption: true } : {}),
    });
  }
  for (const key of COMMAND_FLAGS[name].keys) {
    const spec: OptionSpec = OPTION_SPECS[key];
    y.option(spec.flag, {
      type: yargsType(spec.kind),
      choices: spec.choices as string[] | undefined,
      // A value flag typed last or before another flag would otherwise be dropped without a word.
      requiresArg: spec.kind !== 'boolean' && spec.kind !== 'list',
    });
  }
  return y;
}

/**
 * `run`'s flags that the chosen mode does not use, given on the command line: refused, so none is
 * silently ignored. (The config file and KEA_LM_* variables are shared settings and may hold them.)
 */
export function inapplicableFlag(given: ReadonlySet<OptionKey>, o: Options): string | null {
  const rules: Array<[OptionKey[], boolean, string]> = [
    [['keaApiConcurrency'], o.writer !== 'kea-api', 'works only with --writer kea-api'],
    // The control socket serves both writers (config-get); its timeout and timer need it.
    [['keaApiTimeout', 'keaConfigInterval'], o.keaControlSocket === null, 'needs --kea-control-socket'],
    [['redfishTimeout', 'redfishRetryFor', 'redfishConcurrency', 'redfishRate'], !o.redfish.probe, 'works only with --redfish-probe'],
    [['leaseFile', 'stateFile', 'pollInterval'], o.useDatabaseEvents, 'is for file mode: --use-database-events reads lease4'],
    [['reconcileInterval'], !o.useDatabaseEvents, 'works only with --use-database-events'],
    [['haInterval'], o.haGroup === null, 'works only with --ha-group'],
    [['metricsHost'], o.metricsPort === 0, 'needs --metrics-port'],
    [
      [...DB, 'poolSize', 'allowUntestedSchema'],
      o.writer === 'kea-api' && !o.useDatabaseEvents,
      'does nothing with --writer kea-api in file mode: no database is used',
    ],
  ];
  for (const [keys, unused, why] of rules) {
    const key = keys.find((k) => given.has(k));
    if (unused && key !== undefined) return `--${OPTION_SPECS[key].flag} ${why}`;
  }
  return null;
}
