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
}

export function check(label: string, ok: boolean, detail = ''): boolean {
  const name = prefix + label;
  results.push({ name, ok, detail });
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}\n`);
  return ok;
}

export function summary(): { passed: number; failed: number } {
  const passed = results.filter((r) => r.ok).length;
  return { passed, failed: results.length - passed };
}
