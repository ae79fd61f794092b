/**
 * Capped exponential backoff with jitter (not "full jitter", which may pick 0): a random delay in
 * [min(base/2, ceiling), ceiling], ceiling = min(cap, base·2^attempt). The floor keeps a retry from
 * following a failure at once; the spread keeps several monitors from retrying in step.
 */
export function backoffDelay(attempt: number, baseMs = 250, capMs = 30_000, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  const floor = Math.min(baseMs / 2, ceiling);
  return Math.round(floor + random() * (ceiling - floor));
}

/** Sleeps, but wakes at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
