import { once } from 'node:events';
import yargs from 'yargs';
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
import { VERSION } from './version';
import { CommandName, COMMAND_FLAGS, CommandFlags, declareFlags, inapplicableFlag } from './cli-flags';
import { COMMANDS, helpTopic, renderHelp } from './help';
import { buildOptions, ConfigValues, configPath, envName, OPTION_SPECS, OptionKey, Options, RawValues } from './options';
import { rewordYargsMessage, usageLine } from './usage-messages';

const EXIT_USAGE = 2;

/** What was typed after the last --flag (or in --flag=value), for messages about a value yargs made NaN. */
export function typedValue(args: readonly string[], flag: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${flag}`) found = args[i + 1];
    else if (args[i].startsWith(`--${flag}=`)) found = args[i].slice(flag.length + 3);
  }
  return found;
}

/** The help's width: the terminal's, else $COLUMNS, else 80 (piped), kept between 40 and 120 columns. */
export function helpWidth(columns = process.stdout.columns, env = process.env.COLUMNS): number {
  const w = columns || Number(env) || 80;
  return Math.max(40, Math.min(120, w));
}

// The argv being parsed (set by main), so a bad number is reported as typed, not as NaN.
let typedArgs: readonly string[] = [];

function pickValues(argv: Record<string, unknown>, keys: readonly OptionKey[]): RawValues {
  const out: RawValues = {};
  for (const key of keys) {
    const v = argv[key];
    if (v === undefined) continue;
    // `--subnet-id` with nothing after it must not mean "every subnet".
    if (Array.isArray(v) && v.length === 0) throw new UsageError(`--${OPTION_SPECS[key].flag} needs a value`);
    out[key] = typeof v === 'number' && Number.isNaN(v) ? (typedValue(typedArgs, OPTION_SPECS[key].flag) ?? '') : v;
  }
  return out;
}

/** The KEA_LM_* variables and config keys a command reads: its own shared flags, less the argv-only ones. */
function fromFileOrEnv(flags: CommandFlags): Set<OptionKey> {
  return new Set(flags.keys.filter((k) => !flags.argvOnly.includes(k)));
}

function commandEnv(env: NodeJS.ProcessEnv, flags: CommandFlags): NodeJS.ProcessEnv {
  const keep = fromFileOrEnv(flags);
  const out = { ...env };
  for (const key of Object.keys(OPTION_SPECS) as OptionKey[]) if (!keep.has(key)) delete out[envName(OPTION_SPECS[key])];
  return out;
}

function commandConfig(config: ConfigValues, flags: CommandFlags): ConfigValues {
  const keep = fromFileOrEnv(flags);
  return { file: config.file, values: Object.fromEntries(Object.entries(config.values).filter(([k]) => keep.has(k as OptionKey))) };
}

// Flags are declared without yargs defaults, so a value present in argv was really given and
// defaults -> config file -> environment -> argv stays one rule, applied in options.ts.
function options(argv: Record<string, unknown>, name: CommandName, warn: string[] = []): Options {
  const flags = COMMAND_FLAGS[name];
  const values = pickValues(argv, flags.keys);
  const env = commandEnv(process.env, flags);
  const file = configPath(values, env);
  return buildOptions(
    values,
    env,
    {
      onInsecureFlag: () =>
        warn.push('--db-password shows in the process list; use KEA_DB_PASSWORD, --db-password-file or a systemd credential'),
    },
    file === null ? null : commandConfig(loadConfigFile(file), flags),
  );
}

/** The one-shot commands that read options like `run` and print lines. */
async function oneShot(
  argv: Record<string, unknown>,
  name: CommandName,
  run: (o: Options, out: Output) => Promise<number>,
): Promise<number> {
  const warnings: string[] = [];
  const o = options(argv, name, warnings);
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  return run(o, {
    json: Boolean(argv.json),
    write: (line) => process.stdout.write(line + '\n'),
    warn: (line) => process.stderr.write(line + '\n'),
    drained: () => (process.stdout.writableNeedDrain ? once(process.stdout, 'drain').then(() => undefined) : Promise.resolve()),
  });
}

function unseenFor(raw: unknown): number {
  try {
    return parseDuration(String(raw));
  } catch (err) {
    throw new UsageError(`--unseen-for: ${errorMessage(err)}`);
  }
}

async function printDb(argv: Record<string, unknown>, name: CommandName, run: (o: Options) => Promise<DbCommandOutput>): Promise<void> {
  const warnings: string[] = [];
  const o = options(argv, name, warnings);
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  const out = await run(o);
  process.stdout.write((argv.json ? JSON.stringify(out.json) : out.text) + '\n');
  for (const w of out.warnings ?? []) process.stderr.write(`${w}\n`);
  if (out.refusal) throw new FatalError(out.refusal);
}

export async function main(argvIn: string[] = hideBin(process.argv)): Promise<number> {
  let exitCode = 0;
  typedArgs = argvIn;
  const topic = helpTopic(argvIn);
  if (topic !== undefined) {
    process.stdout.write(renderHelp(topic, helpWidth()));
    return 0;
  }
  const parser = yargs(argvIn)
    .scriptName('kea-lease-monitor')
    // `--subnet-id 1 plan`: an array flag takes one value per flag, not the words after it.
    .parserConfiguration({ 'greedy-arrays': false })
    .command(
      ['run', '$0'],
      COMMANDS.run,
      (y) => declareFlags(y, 'run'),
      async (argv) => {
        const warnings: string[] = [];
        const o = options(argv, 'run', warnings);
        const unused = inapplicableFlag(new Set(Object.keys(pickValues(argv, COMMAND_FLAGS.run.keys)) as OptionKey[]), o);
        if (unused) throw new UsageError(unused);
        const log = createLogger(o.logLevel, o.logFormat);
        for (const w of warnings) log.warn(w);
        exitCode = await runMonitor(o, log);
      },
    )
    .command('db', 'Apply, revert or inspect the database migrations', (db) =>
      db
        .command(
          'migrate',
          COMMANDS['db migrate'],
          (y) => declareFlags(y, 'db migrate'),
          (argv) => printDb(argv, 'db migrate', (o) => dbMigrate(o.db, Boolean(argv.notify), Boolean(argv.dryRun), o.allowUntestedSchema)),
        )
        .command(
          'rollback',
          COMMANDS['db rollback'],
          (y) => declareFlags(y, 'db rollback').conflicts('notify-only', 'drop-constraint'),
          (argv) =>
            printDb(argv, 'db rollback', (o) =>
              dbRollback(o.db, !argv.notifyOnly && Boolean(argv.dropConstraint), Boolean(argv.dryRun), Boolean(argv.notifyOnly)),
            ),
        )
        .command(
          'status',
          COMMANDS['db status'],
          (y) => declareFlags(y, 'db status'),
          (argv) => printDb(argv, 'db status', (o) => dbStatus(o.db, o.allowUntestedSchema)),
        )
        .demandCommand(1, 'name a db command: migrate, rollback or status'),
    )
    .command(
      'plan',
      COMMANDS.plan,
      (y) => declareFlags(y, 'plan'),
      async (argv) => {
        exitCode = await oneShot(argv, 'plan', planCommand);
      },
    )
    .command('reservations', "List, adopt, prune or purge the monitor's own reservations", (r) =>
      r
        .command(
          'list',
          COMMANDS['reservations list'],
          (y) => declareFlags(y, 'reservations list'),
          async (argv) => {
            exitCode = await oneShot(argv, 'reservations list', listCommand);
          },
        )
        .command(
          'adopt',
          COMMANDS['reservations adopt'],
          (y) => declareFlags(y, 'reservations adopt'),
          async (argv) => {
            exitCode = await oneShot(argv, 'reservations adopt', (o, out) => adoptCommand(o, Boolean(argv.dryRun), out));
          },
        )
        .command(
          'prune',
          COMMANDS['reservations prune'],
          (y) => declareFlags(y, 'reservations prune'),
          async (argv) => {
            const own = { unseenForSeconds: unseenFor(argv.unseenFor), dryRun: Boolean(argv.dryRun), force: Boolean(argv.force) };
            exitCode = await oneShot(argv, 'reservations prune', (o, out) => pruneCommand(o, own, out));
          },
        )
        .command(
          'purge',
          COMMANDS['reservations purge'],
          (y) => declareFlags(y, 'reservations purge'),
          async (argv) => {
            const own = { dryRun: Boolean(argv.dryRun), force: Boolean(argv.force) };
            exitCode = await oneShot(argv, 'reservations purge', (o, out) => purgeCommand(o, own, out));
          },
        )
        .demandCommand(1, 'name a reservations command: list, adopt, prune or purge'),
    )
    .strict()
    // help.ts renders --help from the flag tables, before yargs parses anything.
    .help(false)
    .version(`kea-lease-monitor ${VERSION} (node ${process.version})`)
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
