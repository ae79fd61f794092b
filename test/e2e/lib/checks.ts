// Tiny pass/fail ledger: the suite's last line is "N passed, N failed".
export interface Result {
  name: string;
  ok: boolean;
  detail: string;
}
export const results: Result[] = [];

let prefix = '';
/** Names every following check after the section it runs in, e.g. "3.0.4" (the Kea release). */
export function checkPrefix(p: string): void {
  prefix = p ? `[${p}] ` : '';
  markProgress(`a section of ${p || 'no release'} starting`);
}

let last = { label: '(none yet)', at: Date.now() };
/** The latest check or section start: what the stall watch reports from. */
export const lastCheck = (): { label: string; at: number } => last;
/** A section starting counts as progress too. */
export function markProgress(label: string): void {
  last = { label, at: Date.now() };
}

export function check(label: string, ok: boolean, detail = ''): boolean {
  const name = prefix + label;
  markProgress(name);
  results.push({ name, ok, detail });
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}\n`);
  return ok;
}

export function summary(): { passed: number; failed: number } {
  const passed = results.filter((r) => r.ok).length;
  return { passed, failed: results.length - passed };
}
