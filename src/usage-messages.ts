/**
 * yargs' own refusals, reworded as one line naming the flag, the value and what is accepted, the
 * way options.ts words a bad value. Messages yargs does not word this way pass through unchanged.
 */

const COMMANDS: Record<string, readonly string[]> = {
  run: [],
  plan: [],
  db: ['migrate', 'rollback', 'status'],
  reservations: ['list', 'adopt', 'prune', 'purge'],
};

/** The command words at the start of argv ("reservations list"), for the `--help` a message points to. */
export function commandPath(args: readonly string[]): string {
  const [top, sub] = args;
  if (top === undefined || !(top in COMMANDS)) return '';
  return COMMANDS[top].includes(sub ?? '') ? `${top} ${sub}` : top;
}

/** How an unknown argument was typed: "--frobnicate", "-x", or a word that is no command. */
function unknown(name: string, args: readonly string[]): string {
  // yargs reads --no-X as X negated, and names X.
  const typed = args.find((a) => [`--${name}`, `--no-${name}`, `-${name}`].some((f) => a === f || a.startsWith(`${f}=`)));
  if (typed !== undefined) return `unknown flag ${typed.split('=')[0]}`;
  return `unknown command or argument ${JSON.stringify(name)}`;
}

const unquote = (s: string): string => s.trim().replace(/^"(.*)"$/, '$1');

export function rewordYargsMessage(msg: string, args: readonly string[]): string {
  let m = /^Unknown arguments?: (.+)$/s.exec(msg.trim());
  if (m) {
    // yargs names a flag twice, as typed and camel-cased (lease-file, leaseFile): keep the first.
    const kebab = (n: string): string => n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const names = [...new Set(m[1].split(', ').map((n) => kebab(n.trim())))];
    return names.map((name) => unknown(name, args)).join('; ');
  }
  // "Invalid values:\n  Argument: log-level, Given: "verbose", Choices: "error", "warn", ..."
  if (msg.startsWith('Invalid values:')) {
    const lines = [...msg.matchAll(/Argument: ([^,]+), Given: (.+?), Choices: (.+)$/gm)];
    if (lines.length > 0) {
      return lines
        .map(([, flag, given, choices]) => {
          const values = choices.split(/,\s*/).map(unquote).join(', ');
          return `--${flag}: ${JSON.stringify(unquote(given))} is not one of ${values}`;
        })
        .join('; ');
    }
  }
  m = /^Missing required arguments?: (.+)$/.exec(msg.trim());
  if (m)
    return `${m[1]
      .split(', ')
      .map((f) => `--${f.trim()}`)
      .join(', ')} is required`;
  m = /^Not enough arguments following: (.+)$/.exec(msg.trim());
  if (m) return `--${m[1].trim()} needs a value`;
  m = /^Arguments (\S+) and (\S+) are mutually exclusive$/.exec(msg.trim());
  if (m) return `--${m[1]} and --${m[2]} cannot be used together`;
  return msg;
}

/** The one line a usage error prints, pointing at the help of the command that was typed. */
export function usageLine(message: string, args: readonly string[]): string {
  const path = commandPath(args);
  return `${message.replace(/\s*\n\s*/g, ' ')} (see kea-lease-monitor ${path ? `${path} ` : ''}--help)`;
}
