import { UsageError } from './errors';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** "90d", "12h", "30m", "0s", "1w", or a combination such as "1d12h": seconds. */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (!/^(\d+[smhdw])+$/.test(t)) {
    throw new UsageError(`${JSON.stringify(text)} is not a duration such as 90d, 12h, 30m or 0s`);
  }
  let seconds = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([smhdw])/g)) seconds += Number(n) * UNIT_SECONDS[unit];
  if (!Number.isSafeInteger(seconds)) throw new UsageError(`${JSON.stringify(text)} is too long a duration`);
  return seconds;
}
