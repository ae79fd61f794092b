/** A bad flag, environment value or argument: the CLI prints one line and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A condition retrying cannot fix (missing trigger, unwritable output dir): exit 1 with this message. */
export class FatalError extends Error {
  override name = 'FatalError';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The one line a fatal error is logged as: a FatalError's own message, anything else as a failure. */
export function fatalLine(err: unknown): string {
  return err instanceof FatalError ? err.message : `Monitor failed: ${errorMessage(err)}`;
}

// Errors already logged where they happened, so `run` does not log them a second time.
const reported = new WeakSet<object>();

export function markReported(err: unknown): void {
  if (typeof err === 'object' && err !== null) reported.add(err);
}

export function wasReported(err: unknown): boolean {
  return typeof err === 'object' && err !== null && reported.has(err);
}
