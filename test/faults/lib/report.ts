// The suite's ledger: one row per scenario, printed as it finishes and written to RELIABILITY.md.
import { execSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../e2e/lib/pg';
import { MONITOR_BIN, SUITE_FLAGS } from './monitor';

export interface Row {
  name: string;
  leases: number;
  lost: number;
  doubled: number;
  /** Seconds from the fault's end until nothing was lost; null: never within the scenario's timeout. */
  recovery: number | null;
  notes: string;
  pass: boolean;
}

export const rows: Row[] = [];

export function record(r: Row): Row {
  rows.push(r);
  const rec = r.recovery === null ? 'n/a' : r.recovery.toFixed(1);
  process.stdout.write(
    `${r.pass ? 'ok  ' : 'FAIL'} ${r.name}: ${r.leases} leases, ${r.lost} lost, ${r.doubled} doubled, recovery ${rec} s${r.notes ? ` (${r.notes})` : ''}\n`,
  );
  return r;
}

function sh(cmd: string): string {
  try {
    return execSync(cmd, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return '?';
  }
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function writeReport(started: Date, seconds: number, partial: boolean): string {
  const built = (() => {
    try {
      return statSync(MONITOR_BIN).mtime.toISOString();
    } catch {
      return '?';
    }
  })();
  const dirty = sh('git status --porcelain -- src migrations scripts') ? ' (with uncommitted changes in src)' : '';
  const passed = rows.filter((r) => r.pass).length;
  const out = [
    '# Reliability',
    '',
    'Written by `make faults` (test/faults/run.ts); do not edit by hand. What each scenario does and what it',
    'counts: docs/reliability.md.',
    '',
    `- Date: ${started.toISOString()} (took ${Math.round(seconds)} s)${partial ? '; a partial run (FAULTS_ONLY)' : ''}`,
    `- Binary: \`${MONITOR_BIN.replace(ROOT + '/', '')}\` built ${built} from commit ${sh('git rev-parse --short HEAD')}${dirty} (${sh('git log -1 --format=%s').slice(0, 80)})`,
    `- PostgreSQL: ${sh('/usr/lib/postgresql/15/bin/postgres --version')}, durable (fsync and synchronous_commit on); Kea schema from \`kea-admin db-init\` (${sh("kea-admin --version 2>/dev/null || dpkg-query -W -f='${Version}' kea-admin")}); monitor ${sh(`${MONITOR_BIN} --version`)}; suite on Node ${process.version}`,
    `- Monitor flags on top of the defaults: \`${SUITE_FLAGS.join(' ')}\``,
    `- Result: ${passed} passed, ${rows.length - passed} failed`,
    '',
    'Lost: a live lease whose MAC has no reservation for that address (or one for another address). Doubled: two',
    'reservations for one MAC and subnet, or for one address. Recovery: seconds from the end of the fault (or from the',
    'last lease of the stream, when it ran on after the fault) until every lease was reserved.',
    '',
    '| Scenario | Result | Leases | Lost | Doubled | Recovery (s) | Notes |',
    '|---|---|---:|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${cell(r.name)} | ${r.pass ? 'pass' : '**FAIL**'} | ${r.leases} | ${r.lost} | ${r.doubled} | ${r.recovery === null ? 'n/a' : r.recovery.toFixed(1)} | ${cell(r.notes)} |`,
    ),
    '',
  ].join('\n');
  writeFileSync(join(ROOT, 'RELIABILITY.md'), out);
  return out;
}
