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
