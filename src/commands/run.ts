import { Presence } from '../db/presence';
import { errorMessage, FatalError } from '../errors';
import { HaMonitor } from '../ha/supervisor';
import { flushLogger, Logger } from '../logger';
import { Monitor } from '../monitor';
import type { Options } from '../options';
import { handleStopSignals } from '../signals';

/** `run`: until a signal stops it. Resolves with the exit code. */
export async function runMonitor(options: Options, log: Logger): Promise<number> {
  const monitor = options.haGroup !== null ? new HaMonitor(options, log) : new Monitor(options, log);
  // So `reservations purge` and `prune` can tell a monitor runs here (HA standbys included).
  // File mode with the Kea API writer has no database to say it on.
  const presence =
    options.writer === 'sql' || options.useDatabaseEvents
      ? new Presence(options.db, log.child({ module: 'presence' }), options.heartbeatInterval * 1000)
      : null;
  const release = handleStopSignals(() => monitor.stop(), log);
  try {
    presence?.start();
    // A stop may come before the source is up (database unreachable at boot): done settles then.
    await Promise.race([monitor.start(), monitor.done]);
    await monitor.done;
    return 0;
  } catch (err) {
    log.error(err instanceof FatalError ? err.message : `Monitor failed: ${errorMessage(err)}`);
    return 1;
  } finally {
    release();
    await presence?.stop();
    await flushLogger(log);
  }
}
