import yargs, { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { Output } from './commands/client';
import { dbMigrate, dbRollback, dbStatus, DbCommandOutput } from './commands/db';
import { planCommand } from './commands/plan';
import { adoptCommand } from './commands/reservations-adopt';
import { listCommand } from './commands/reservations-list';
import { pruneCommand } from './commands/reservations-prune';
import { purgeCommand } from './commands/reservations-purge';
import { runMonitor } from './commands/run';
import { loadConfigFile } from './config-file';
import { parseDuration } from './duration';
import { errorMessage, FatalError, UsageError } from './errors';
import { createLogger } from './logger';
import { buildOptions, configPath, envName, OPTION_SPECS, OptionKey, OptionSpec, Options, RawValues } from './options';
import { rewordYargsMessage, usageLine } from './usage-messages';

const EXIT_USAGE = 2;

// --help shows each flag's parse type. Numbers are parsed by yargs as numbers; options.ts still
// validates them, with the text typed (see pickValues). Lists typed "1,2" stay strings.
function yargsType(kind: OptionSpec['kind']): 'boolean' | 'array' | 'number' | 'string' {
  if (kind === 'boolean') return 'boolean';
  if (kind === 'list') return 'array';
  return kind === 'integer' || kind === 'number' ? 'number' : 'string';
}

/** What was typed after the last --flag (or in --flag=value), for messages about a value yargs made NaN. */
export function typedValue(args: readonly string[], flag: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${flag}`) found = args[i + 1];
    else if (args[i].startsWith(`--${flag}=`)) found = args[i].slice(flag.length + 3);
  }
  return found;
}

/** The help's width: the terminal's, else $COLUMNS, kept between 40 and 120 columns. */
export function helpWidth(columns = process.stdout.columns, env = process.env.COLUMNS): number {
  const w = columns || Number(env) || 100;
  return Math.max(40, Math.min(120, w));
}

// The argv being parsed (set by main), so a bad number is reported as typed, not as NaN.
let typedArgs: readonly string[] = [];

// Flags are declared without yargs defaults, so a value present in argv was really given and
// defaults -> environment -> argv stays one rule, applied in options.ts. yargs' camel-case
// expansion makes --db-host readable as argv.dbHost, the OPTION_SPECS key.
function declare(y: Argv, group: 'db' | 'run'): Argv {
  for (const spec of Object.values(OPTION_SPECS) as OptionSpec[]) {
    if (group === 'db' && spec.group !== 'db') continue;
    y.option(spec.flag, {
      type: yargsType(spec.kind),
      describe: `${spec.describe} [env ${envName(spec)}]`,
      defaultDescription: spec.default,
      choices: spec.choices as string[] | undefined,
      // A value flag typed last or before another flag would otherwise be dropped without a word.
      requiresArg: spec.kind !== 'boolean' && spec.kind !== 'list',
      group: spec.group === 'db' ? 'Database and logging:' : 'Monitor:',
    });
  }
  return y;
}

function pickValues(argv: Record<string, unknown>): RawValues {
  const out: RawValues = {};
  for (const key of Object.keys(OPTION_SPECS) as OptionKey[]) {
    const v = argv[key];
    if (v === undefined) continue;
    // `--subnet-id` with nothing after it must not mean "every subnet".
    if (Array.isArray(v) && v.length === 0) throw new UsageError(`--${OPTION_SPECS[key].flag} needs a value`);
    out[key] = typeof v === 'number' && Number.isNaN(v) ? (typedValue(typedArgs, OPTION_SPECS[key].flag) ?? '') : v;
  }
  return out;
}

function options(argv: Record<string, unknown>, warn: string[] = []): Options {
  const values = pickValues(argv);
  const file = configPath(values, process.env);
  return buildOptions(
    values,
    process.env,
    {
      onInsecureFlag: () =>
        warn.push('--db-password shows in the process list; use KEA_DB_PASSWORD, --db-password-file or a systemd credential'),
    },
    file === null ? null : loadConfigFile(file),
  );
}

/** The one-shot commands that read options like `run` and print lines. */
async function oneShot(argv: Record<string, unknown>, run: (o: Options, out: Output) => Promise<number>): Promise<number> {
  const warnings: string[] = [];
  const o = options(argv, warnings);
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  return run(o, { json: Boolean(argv.json), write: (line) => process.stdout.write(line + '\n') });
}

function unseenFor(raw: unknown): number {
  try {
    return parseDuration(String(raw));
  } catch (err) {
    throw new UsageError(`--unseen-for: ${errorMessage(err)}`);
  }
}

const JSON_FLAG = { type: 'boolean', describe: 'One JSON object per line; the last line sums up' } as const;

async function printDb(argv: Record<string, unknown>, run: (o: ReturnType<typeof options>) => Promise<DbCommandOutput>): Promise<void> {
  const warnings: string[] = [];
  const o = options(argv, warnings);
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  const out = await run(o);
  process.stdout.write((argv.json ? JSON.stringify(out.json) : out.text) + '\n');
  if (out.refusal) throw new FatalError(out.refusal);
}

export async function main(argvIn: string[] = hideBin(process.argv)): Promise<number> {
  let exitCode = 0;
  typedArgs = argvIn;
  const parser = yargs(argvIn)
    .scriptName('kea-lease-monitor')
    .usage(
      "$0 [run] [options]\n\nTurns ISC Kea DHCPv4 leases into static reservations in Kea's hosts table and per-device discovery records.",
    )
    .command(
      ['run', '$0'],
      'Follow leases and pin them as reservations (default)',
      (y) => declare(y, 'run'),
      async (argv) => {
        const warnings: string[] = [];
        const o = options(argv, warnings);
        const log = createLogger(o.logLevel, o.logFormat);
        for (const w of warnings) log.warn(w);
        exitCode = await runMonitor(o, log);
      },
    )
    .command('db', 'Apply, revert or inspect the database migrations', (db) =>
      db
        .command(
          'migrate',
          'Apply the upsert arbiter, and the lease4 NOTIFY trigger with --notify (idempotent)',
          (y) =>
            declare(y, 'db')
              .option('notify', { type: 'boolean', describe: 'Also install the lease4 NOTIFY trigger' })
              .option('dry-run', { type: 'boolean', describe: 'Report what would change; change nothing' })
              .option('json', { type: 'boolean', describe: 'Print one JSON line with a "changed" key' }),
          (argv) => printDb(argv, (o) => dbMigrate(o.db, Boolean(argv.notify), Boolean(argv.dryRun), o.allowUntestedSchema)),
        )
        .command(
          'rollback',
          "Drop the NOTIFY trigger (and with --drop-constraint the project's unique constraint, never Kea's index)",
          (y) =>
            declare(y, 'db')
              .option('notify-only', {
                type: 'boolean',
                describe: "Drop only the NOTIFY trigger and its functions; keep the migrations' version table",
              })
              .option('drop-constraint', {
                type: 'boolean',
                describe: 'Also drop the constraint `db migrate` added where Kea had no unique index',
              })
              .option('dry-run', { type: 'boolean', describe: 'Report what would change; change nothing' })
              .option('json', { type: 'boolean', describe: 'Print one JSON line with a "changed" key' })
              .conflicts('notify-only', 'drop-constraint'),
          (argv) =>
            printDb(argv, (o) =>
              dbRollback(o.db, !argv.notifyOnly && Boolean(argv.dropConstraint), Boolean(argv.dryRun), Boolean(argv.notifyOnly)),
            ),
        )
        .command(
          'status',
          "Show Kea's schema version, the migrations version, the arbiter and the NOTIFY trigger",
          (y) => declare(y, 'db').option('json', { type: 'boolean', describe: 'Print one JSON line' }),
          (argv) => printDb(argv, (o) => dbStatus(o.db, o.allowUntestedSchema)),
        )
        .demandCommand(1, 'name a db command: migrate, rollback or status'),
    )
    .command(
      'plan',
      'Show what the monitor would do with the current lease store (lease4 or the lease files); writes nothing',
      (y) => declare(y, 'run').option('json', JSON_FLAG),
      async (argv) => {
        exitCode = await oneShot(argv, planCommand);
      },
    )
    .command('reservations', "List, adopt, prune or purge the monitor's own reservations", (r) =>
      r
        .command(
          'list',
          "The monitor's own reservations, with whether each device has a live lease now",
          (y) => declare(y, 'run').option('json', JSON_FLAG),
          async (argv) => {
            exitCode = await oneShot(argv, listCommand);
          },
        )
        .command(
          'adopt',
          'Mark unmarked reservations that a discovery record in --output-dir says the monitor created',
          (y) => declare(y, 'run').option('json', JSON_FLAG),
          async (argv) => {
            exitCode = await oneShot(argv, adoptCommand);
          },
        )
        .command(
          'prune',
          'Remove own reservations of devices with no live lease for --unseen-for, and their discovery records',
          (y) =>
            declare(y, 'run')
              .option('json', JSON_FLAG)
              .option('unseen-for', { type: 'string', demandOption: true, describe: 'How long without a live lease, e.g. 90d, 12h, 0s' }),
          async (argv) => {
            exitCode = await oneShot(argv, (o, out) => pruneCommand(o, unseenFor(argv.unseenFor), out));
          },
        )
        .command(
          'purge',
          'Remove every reservation the monitor owns (and their discovery records), nothing else',
          (y) => declare(y, 'run').option('json', JSON_FLAG),
          async (argv) => {
            exitCode = await oneShot(argv, purgeCommand);
          },
        )
        .demandCommand(1, 'name a reservations command: list, adopt, prune or purge'),
    )
    .strict()
    .help()
    .alias('h', 'help')
    .version(`kea-lease-monitor ${process.env.KLM_VERSION ?? '0.0.0-dev'} (node ${process.version})`)
    .wrap(helpWidth())
    .fail((msg, err) => {
      // yargs' own argument errors (YError) are usage errors too; a handler's error passes through.
      if (err && err.name !== 'YError') throw err;
      throw new UsageError(rewordYargsMessage(err?.message ?? msg, typedArgs));
    });
  try {
    await parser.parseAsync();
    return exitCode;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`kea-lease-monitor: ${usageLine(err.message, argvIn)}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`kea-lease-monitor: ${errorMessage(err)}\n`);
    return 1;
  }
}
