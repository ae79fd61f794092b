/**
 * kea-lease-monitor(1), in roff, from the same tables as --help (cli-flags.ts, help.ts): `make man`
 * writes docs/kea-lease-monitor.1, and a test keeps the two equal.
 */
import { COMMAND_FLAGS, CommandName, OWN_FLAGS, sharedSections } from './cli-flags';
import { COMMANDS, sharedEntry } from './help';
import { envName, OPTION_SPECS, OptionKey, OptionSpec } from './options';

/** Text safe in roff: backslashes doubled, hyphens literal, no line starting with a control character. */
function roff(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/gm, '\\&$1');
}

function flagItem(left: string, text: string): string[] {
  return ['.TP', `.B ${roff(left)}`, roff(text)];
}

export function renderMan(version: string): string {
  const out: string[] = [
    `.TH KEA\\-LEASE\\-MONITOR 1 "" "kea\\-lease\\-monitor ${roff(version)}" "User Commands"`,
    '.SH NAME',
    'kea\\-lease\\-monitor \\- turn ISC Kea DHCPv4 leases into static reservations and discovery records',
    '.SH SYNOPSIS',
    '.B kea\\-lease\\-monitor',
    '[\\fBrun\\fR] [\\fIoptions\\fR]',
    '.br',
    '.B kea\\-lease\\-monitor',
    '\\fBplan\\fR | \\fBdb\\fR \\fBmigrate\\fR|\\fBrollback\\fR|\\fBstatus\\fR | \\fBreservations\\fR \\fBlist\\fR|\\fBadopt\\fR|\\fBprune\\fR|\\fBpurge\\fR [\\fIoptions\\fR]',
    '.SH DESCRIPTION',
    roff(
      "Follows Kea's lease store (the memfile CSV, or lease4 through PostgreSQL NOTIFY) and pins each selected live lease as a reservation in Kea's hosts table, with a discovery record per device. It changes only the reservations it marked as its own.",
    ),
    '.SH COMMANDS',
  ];
  for (const name of Object.keys(COMMANDS) as CommandName[]) {
    out.push('.SS ' + roff(name), roff(COMMANDS[name]));
    for (const f of OWN_FLAGS[name])
      out.push(...flagItem(`--${f.flag}${f.value ? ` <${f.value}>` : ''}`, f.describe + (f.required ? '. Required.' : '.')));
    const shared = COMMAND_FLAGS[name].keys.filter((k) => k !== 'config');
    if (name !== 'run') {
      out.push('.PP', roff(`Also reads --config and: ${shared.map((k) => `--${OPTION_SPECS[k].flag}`).join(', ')}.`));
      if (COMMAND_FLAGS[name].argvOnly.length > 0)
        out.push(
          roff(
            `Its scope flags (${COMMAND_FLAGS[name].argvOnly.map((k) => `--${OPTION_SPECS[k].flag}`).join(', ')}) select the monitor's rows, from the command line only.`,
          ),
        );
    }
  }
  out.push(
    '.SH OPTIONS',
    roff(
      'The flags of run; the other commands take the subsets listed above. Each may also come from the configuration file (its key is the long flag name) or the environment; the command line wins, then the environment, then the file.',
    ),
  );
  for (const s of sharedSections('run')) {
    out.push('.SS ' + roff(s.title.replace(/:$/, '')));
    for (const key of s.keys) {
      const e = sharedEntry(key, false);
      out.push(...flagItem(e.left, e.text));
    }
  }
  out.push('.SH ENVIRONMENT');
  for (const key of Object.keys(OPTION_SPECS) as OptionKey[]) {
    const spec: OptionSpec = OPTION_SPECS[key];
    out.push('.TP', `.B ${roff(envName(spec))}`, roff(`As --${spec.flag}.`));
  }
  out.push(
    '.TP',
    '.B KEA_DB_PASSWORD',
    roff('The database password, when no --db-password-file is given (or the systemd credential "db-password").'),
    '.SH EXIT STATUS',
    '.TP',
    '.B 0',
    roff('Stopped cleanly, or the command succeeded.'),
    '.TP',
    '.B 1',
    roff('A fatal condition an operator must fix (one line says what), or purge/prune refused while a monitor runs.'),
    '.TP',
    '.B 2',
    roff('A usage or configuration error: unknown flag, a flag the command or mode does not use, bad value, bad configuration file.'),
  );
  return out.join('\n') + '\n';
}
