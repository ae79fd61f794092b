/**
 * The mark that tells a reservation the monitor made from one an operator made. It lives in
 * hosts.user_context (Kea shows it as "user-context"), under one key, beside any other keys.
 * Pure functions: the SQL writer, the Kea API writer and the one-shot commands share them.
 */

export const OWNER_KEY = 'kea-lease-monitor';

/** Where the monitor learned of the lease. */
export type MarkSource = 'memfile' | 'database';

export interface OwnerMark {
  /** When the monitor created the reservation (ISO-8601). */
  created: string;
  source: MarkSource;
}

export function makeMark(source: MarkSource, now: Date = new Date()): OwnerMark {
  return { created: now.toISOString(), source };
}

/** user_context as an object; null for absent, non-JSON or non-object text (never throws). */
export function parseUserContext(text: string | null | undefined): Record<string, unknown> | null {
  if (text === null || text === undefined || text.trim() === '') return null;
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The monitor's mark, if this user_context carries a well-formed one. */
export function readMark(text: string | null | undefined): OwnerMark | null {
  const mark = parseUserContext(text)?.[OWNER_KEY];
  if (typeof mark !== 'object' || mark === null || Array.isArray(mark)) return null;
  const { created, source } = mark as Partial<OwnerMark>;
  if (typeof created !== 'string' || Number.isNaN(Date.parse(created))) return null;
  if (source !== 'memfile' && source !== 'database') return null;
  return { ...mark, created, source };
}

export function isOwned(text: string | null | undefined): boolean {
  return readMark(text) !== null;
}

/**
 * user_context with the mark added, keeping every other key. Text that is not a JSON object is
 * not ours to reinterpret: the caller must treat such a row as foreign, so this refuses it.
 */
export function withMark(text: string | null | undefined, mark: OwnerMark): string {
  const existing = parseUserContext(text);
  if (existing === null && text !== null && text !== undefined && text.trim() !== '') {
    throw new Error('user_context is not a JSON object; refusing to rewrite it');
  }
  return JSON.stringify({ ...(existing ?? {}), [OWNER_KEY]: mark });
}

/** user_context with the mark removed; null when nothing else was there. */
export function withoutMark(text: string | null | undefined): string | null {
  const existing = parseUserContext(text);
  if (!existing) return text ?? null;
  const { [OWNER_KEY]: _removed, ...rest } = existing;
  return Object.keys(rest).length === 0 ? null : JSON.stringify(rest);
}

/**
 * The same test in SQL, for statements that must decide in one round trip. The regex guard comes
 * first, so text that merely is not JSON is never cast (PostgreSQL 15 has no safe cast); a row is
 * the monitor's only when the mark object has a string "created" and a known "source", as readMark
 * demands. `col` is a trusted column reference, never input.
 */
export function ownedSql(col: string): string {
  return `COALESCE(CASE WHEN ${col} ~ '^\\s*\\{.*"${OWNER_KEY}"\\s*:\\s*\\{' THEN
      jsonb_typeof(${col}::jsonb -> '${OWNER_KEY}' -> 'created') = 'string'
      AND ${col}::jsonb -> '${OWNER_KEY}' ->> 'source' IN ('memfile', 'database') END, false)`;
}

/** user_context text for a row the monitor creates: only the mark (nothing else was there). */
export function newRowContext(mark: OwnerMark): string {
  return JSON.stringify({ [OWNER_KEY]: mark });
}
