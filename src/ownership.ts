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

/**
 * "created" of a mark: an ISO-8601 time as toISOString writes it (seconds, fraction, offset
 * optional). One pattern for readMark and for kea_lm_owned in migrations/0004 (which must hold the
 * same text; test/ownership-db.test.ts checks both agree). No backslash, so it means the same in a
 * PostgreSQL literal whatever standard_conforming_strings says.
 */
export const CREATED_PATTERN = '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})$';
const CREATED = new RegExp(CREATED_PATTERN);

/** The monitor's mark, if this user_context carries a well-formed one (the rule of kea_lm_owned in SQL). */
export function readMark(text: string | null | undefined): OwnerMark | null {
  const mark = parseUserContext(text)?.[OWNER_KEY];
  if (typeof mark !== 'object' || mark === null || Array.isArray(mark)) return null;
  const { created, source } = mark as Partial<OwnerMark>;
  if (typeof created !== 'string' || !CREATED.test(created)) return null;
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
 * A necessary condition for readMark, in SQL, to narrow a scan without casting: a JSON object starts
 * with "{" after JSON whitespace (a subset of [[:space:]]). No backslash in the pattern, so it holds
 * under standard_conforming_strings = off. `col` is a trusted column reference, never input. The
 * full rule in SQL is kea_lm_owned (migrations/0004), used by the reservation write.
 */
export function markPrefilterSql(col: string): string {
  return `${col} ~ '^[[:space:]]*[{]'`;
}

/** user_context text for a row the monitor creates: only the mark (nothing else was there). */
export function newRowContext(mark: OwnerMark): string {
  return JSON.stringify({ [OWNER_KEY]: mark });
}
