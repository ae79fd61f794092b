/** HA: the leader's lock and the session that must still hold it for a write to happen (docs/ha.md). */

/** The HA leader's lock and the session holding it (pid and backend_start, which no later session shares). */
export interface FenceToken {
  lockClass: number;
  lockKey: number;
  pid: number;
  /** backend_start in microseconds since the epoch, as text (beyond 2^53 for no date soon, but exact). */
  backendStart: string;
}

/** Names the session that must still hold the HA lock for a write to happen. */
export interface Fence {
  /** null when this process is not the active monitor (then nothing is written). */
  token(): FenceToken | null;
  /** Called when the fence was found closed. */
  fenced(): void;
}

/** The HA fence was closed: this process is no longer the active monitor; nothing was written. */
export class FencedError extends Error {
  override name = 'FencedError';
}
