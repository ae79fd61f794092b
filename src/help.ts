/**
 * --help, rendered from the same tables the parser is declared from (cli-flags.ts, options.ts): a
 * command's own flags first, then only the shared flags it reads, wrapped to the terminal (80
 * columns when piped). One flag is one entry: its value, what it does, its default once, whether it
 * repeats, and where else it may come from.
 */
import { COMMAND_FLAGS, CommandName, OWN_FLAGS, OwnFlag, sharedSections } from './cli-flags';
import { envName, OPTION_SPECS, OptionKey, OptionSpec } from './options';

/** What a command line asks help for: a command, or a group of commands, or the program. */
export type HelpTopic = CommandName | 'db' | 'reservations';

interface Entry {
  left: string;
  text: string;
}

export const COMMANDS: Record<CommandName, string> = {
  run: 'Follow leases and pin them as reservations (the default command)',
  'db migrate': 'Apply the upsert arbiter, and the lease4 NOTIFY trigger with --notify (idempotent)',
  'db rollback': "Drop the NOTIFY trigger (and with --drop-constraint the project's unique constraint, never Kea's index)",
  'db status': "Show Kea's schema version, the migrations version, the arbiter and the NOTIFY trigger; changes nothing",
  plan: 'Show what the monitor would do with the current lease store (lease4 or the lease files); writes nothing',
  'reservations list': "The monitor's own reservations, with whether each device has a live lease now",
  'reservations adopt': 'Mark unmarked reservations that a discovery record in --output-dir says the monitor created',
  'reservations prune': 'Remove own reservations of devices with no live lease for --unseen-for, and their discovery records',
  'reservations purge':
    'Remove the reservations the monitor owns (all, or those the scope flags select) and their discovery records, nothing else',
};

const GROUPS = {
  db: 'Apply, revert or inspect the database migrations',
  reservations: "List, adopt, prune or purge the monitor's own reservations",
} as const;

function placeholder(spec: OptionSpec): string {
  switch (spec.kind) {
    case 'boolean':
      return '';
    case 'integer':
    case 'number':
      return ' <n>';
    case 'integers':
      return ' <n[,n]>';
    case 'duration':
      return ' <duration>';
    case 'choice':
      return ` <${spec.choices?.join('|')}>`;
    case 'list':
    case 'strings':
      return ' <value>';
    case 'string':
      return ' <text>';
  }
}

/** One shared flag's help entry. `describe` overrides the daemon's wording (row scope). */
export function sharedEntry(key: OptionKey, argvOnly: boolean, describe?: string): Entry {
  const spec: OptionSpec = OPTION_SPECS[key];
  const parts = [sentence(describe ?? spec.describe)];
  if (spec.default !== undefined && !(spec.kind === 'boolean' && spec.default === 'false')) parts.push(`Default: ${spec.default}.`);
  if (spec.kind === 'list' || spec.kind === 'strings') parts.push('Repeatable.');
  parts.push(argvOnly ? 'Command line only.' : `Env ${envName(spec)}.`);
  return { left: `--${spec.flag}${placeholder(spec)}`, text: parts.join(' ') };
}

function ownEntry(f: OwnFlag): Entry {
  const parts = [sentence(f.describe)];
  if (f.required) parts.push('Required.');
  return { left: `--${f.flag}${f.value ? ` <${f.value}>` : ''}`, text: parts.join(' ') };
}

function sentence(s: string): string {
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** Greedy word wrap; a word longer than the width is cut. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  const words = text
    .split(/\s+/)
    .filter(Boolean)
    .flatMap((w) => (w.length <= width ? [w] : (w.match(new RegExp(`.{1,${width}}`, 'g')) ?? [])));
  for (const word of words) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

function table(entries: Entry[], width: number): string[] {
  const indent = 2;
  const widest = Math.max(...entries.map((e) => e.left.length));
  const col = Math.min(widest + indent + 2, Math.floor(width * 0.4));
  const out: string[] = [];
  for (const e of entries) {
    const text = wrap(e.text, Math.max(20, width - col));
    const head = ' '.repeat(indent) + e.left;
    if (head.length + 2 <= col) {
      out.push(head.padEnd(col) + (text[0] ?? ''));
      text.shift();
    } else out.push(head);
    for (const t of text) out.push(' '.repeat(col) + t);
  }
  return out;
}

function paragraph(text: string, width: number): string[] {
  return wrap(text, width);
}

const PROGRAM = 'kea-lease-monitor';

function commandHelp(name: CommandName, width: number): string[] {
  const c = COMMAND_FLAGS[name];
  const own = OWN_FLAGS[name];
  const usage = `${PROGRAM} ${name === 'run' ? '[run]' : name}${
    own.some((f) => f.required)
      ? ` ${own
          .filter((f) => f.required)
          .map((f) => `--${f.flag} <${f.value}>`)
          .join(' ')}`
      : ''
  } [options]`;
  const out = [...paragraph(usage, width), '', ...paragraph(COMMANDS[name], width)];
  const ownEntries = [...own.map(ownEntry), { left: '-h, --help', text: 'Show this help.' }];
  if (name === 'run') ownEntries.push({ left: '--version', text: 'Show the version.' });
  out.push('', 'Options:', ...table(ownEntries, width));
  for (const s of sharedSections(name)) {
    out.push(
      '',
      ...wrap(s.title, width),
      ...table(
        s.keys.map((k) => sharedEntry(k, c.argvOnly.includes(k), s.describe?.[k])),
        width,
      ),
    );
  }
  return out;
}

function groupHelp(group: keyof typeof GROUPS, width: number): string[] {
  const names = (Object.keys(COMMANDS) as CommandName[]).filter((n) => n.startsWith(`${group} `));
  return [
    `${PROGRAM} ${group} <command> [options]`,
    '',
    ...paragraph(GROUPS[group], width),
    '',
    'Commands:',
    ...table(
      names.map((n) => ({ left: n, text: COMMANDS[n] })),
      width,
    ),
    '',
    ...paragraph(`Run \`${PROGRAM} ${group} <command> --help\` for a command's flags.`, width),
  ];
}

function programHelp(width: number): string[] {
  const commands: Entry[] = [
    { left: 'run', text: COMMANDS.run },
    { left: 'plan', text: COMMANDS.plan },
    { left: 'db migrate|rollback|status', text: GROUPS.db },
    { left: 'reservations list|adopt|prune|purge', text: GROUPS.reservations },
  ];
  return [
    ...paragraph(
      `${PROGRAM} turns ISC Kea DHCPv4 leases into static reservations in Kea's hosts table and per-device discovery records.`,
      width,
    ),
    '',
    'Commands:',
    ...table(commands, width),
    '',
    ...paragraph(`Run \`${PROGRAM} <command> --help\` for a command's flags. The flags of run follow.`, width),
    '',
    ...commandHelp('run', width),
  ];
}

export function renderHelp(topic: HelpTopic | null, width: number): string {
  const lines =
    topic === null ? programHelp(width) : topic === 'db' || topic === 'reservations' ? groupHelp(topic, width) : commandHelp(topic, width);
  return lines.map((l) => l.trimEnd()).join('\n') + '\n';
}

/** The topic a command line asks help for (the command words before or among the flags), or undefined if it asks none. */
export function helpTopic(argv: readonly string[]): HelpTopic | null | undefined {
  const end = argv.indexOf('--');
  const args = end === -1 ? argv : argv.slice(0, end);
  if (!args.includes('--help') && !args.includes('-h')) return undefined;
  const words = args.filter((a) => !a.startsWith('-'));
  const first = words.find((w) => ['run', 'plan', 'db', 'reservations'].includes(w));
  if (first === undefined) return null;
  if (first === 'run' || first === 'plan') return first;
  const sub = words[words.indexOf(first) + 1];
  const name = `${first} ${sub}`;
  return name in COMMANDS ? (name as CommandName) : (first as 'db' | 'reservations');
}
