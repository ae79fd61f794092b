/** How the writer should treat a database error. */
export type ErrorClass =
  /** Connection lost, server restarting, timeouts: retry the same batch after a backoff. */
  | 'transient'
  /** Data that PostgreSQL rejects (class 22/23): retrying will fail again; isolate the bad lease. */
  | 'data'
  /** Missing table, permission, no arbiter: an operator must act; keep retrying, slowly. */
  | 'config';

export function classifyDbError(err: unknown): ErrorClass {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return 'transient'; // ECONNREFUSED, ETIMEDOUT, socket closed
  const cls = code.slice(0, 2);
  if (cls === '22' || cls === '23') return 'data';
  if (cls === '08' || cls === '53' || cls === '57' || cls === '40' || cls === '55' || cls === '58' || cls === 'XX') {
    return 'transient';
  }
  return 'config';
}

/** "no unique or exclusion constraint matching the ON CONFLICT specification". */
export function isMissingArbiter(err: unknown): boolean {
  return (err as { code?: unknown }).code === '42P10';
}
