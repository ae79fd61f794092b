// Tiny pass/fail ledger: the suite's last line is "N passed, N failed".
export interface Result { name: string; ok: boolean; detail: string }
export const results: Result[] = [];

export function check(name: string, ok: boolean, detail = ""): boolean {
  results.push({ name, ok, detail });
  process.stdout.write(`${ok ? "ok  " : "FAIL"} ${name}${detail ? ` (${detail})` : ""}\n`);
  return ok;
}

export function summary(): { passed: number; failed: number } {
  const passed = results.filter((r) => r.ok).length;
  return { passed, failed: results.length - passed };
}
