import { Presence } from '../db/presence';
import { fatalLine, wasReported } from '../errors';
import { HaMonitor } from '../ha/supervisor';
import { flushLogger, Logger } from '../logger';
import { Monitor } from '../monitor';
import type { Options } from '../options';
import { handleStopSignals } from '../signals';
import { checkLeaseFile } from '../sources/lease-file-check';

/** `run`: until a signal stops it. Resolves with the exit code. */
export async function runMonitor(options: Options, log: Logger): Promise<number> {
  // A lease file that waiting cannot bring (mistyped directory, a directory, unreadable) refuses at once.
  if (!options.useDatabaseEvents) checkLeaseFile(options.leaseFile);
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
    // The monitor logs its fatal error before its shutdown lines; anything else is logged here.
    if (!wasReported(err)) log.error(fatalLine(err));
    return 1;
  } finally {
    release();
    await presence?.stop();
    await flushLogger(log);
  }
}
