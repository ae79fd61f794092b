import { readFileSync } from 'node:fs';
import { isLiveLease } from '../db/live-lease';
import type { Database } from '../db/pool';
import { FatalError } from '../errors';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { RedfishOptions } from '../options';
import { RedfishProber } from './prober';

/** A service root is a few KiB; past this the answer is abandoned. */
export const MAX_ROOT_BYTES = 64 * 1024;

/** The prober --redfish-probe asks for, or null. A NOTIFY's lease is checked in lease4 through `db`. */
export function redfishProber(o: RedfishOptions, db: Database | null, log: Logger, metrics: Metrics): RedfishProber | null {
  if (!o.probe) return null;
  let ca: string | null = null;
  if (o.caFile !== null) {
    try {
      ca = readFileSync(o.caFile, 'utf8');
    } catch (err) {
      throw new FatalError(`--redfish-ca: cannot read ${o.caFile} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  return new RedfishProber(
    {
      timeoutMs: o.timeoutMs,
      maxBytes: MAX_ROOT_BYTES,
      ca,
      port: 443,
      retryForMs: o.retryForMs,
      concurrency: o.concurrency,
      attemptsPerSecond: o.rate,
    },
    db ? (lease) => isLiveLease(db, lease) : null,
    log,
    metrics,
  );
}
