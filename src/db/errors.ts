import type { ErrorClass } from '../domain/error-class';

export type { ErrorClass } from '../domain/error-class';

const FATAL = new Set(['42501', '42P01', '42703', '3D000', '28P01', '28000']);

export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  // Five characters, but never an E: Node's socket errors (EPIPE, EPERM, EBADF) have that shape too, and no
  // SQLSTATE class starts with E.
  return typeof code === 'string' && /^[0-9A-DF-Z][0-9A-Z]{4}$/.test(code) ? code : undefined;
}

export function classifyDbError(err: unknown): ErrorClass {
  const code = sqlState(err);
  if (code === undefined) return 'transient'; // ECONNREFUSED, ETIMEDOUT, ENOTFOUND, socket closed, query read timeout
  if (FATAL.has(code)) return 'fatal';
  if (code === '25006') return 'read-only';
  // The write's prepared statement outlived a function whose result type changed: a fresh connection prepares it again.
  if (code === '0A000' && /cached plan must not change result type/.test(String((err as Error).message))) return 'transient';
  const cls = code.slice(0, 2);
  if (cls === '22' || cls === '23') return 'data';
  if (cls === '08' || cls === '53' || cls === '57' || cls === '40' || cls === '55' || cls === '58' || cls === 'XX') {
    return 'transient';
  }
  return 'config';
}

/** "no unique or exclusion constraint matching the ON CONFLICT specification". */
export function isMissingArbiter(err: unknown): boolean {
  return sqlState(err) === '42P10';
}
