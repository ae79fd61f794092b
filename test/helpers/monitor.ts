import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import { Monitor } from '../../src/monitor';
import { buildOptions, DbOptions, Options } from '../../src/options';
import { hostRows } from './pg';
import { waitFor } from './wait';

export interface Running {
  monitor: Monitor;
  options: Options;
  logs: string[];
  stop(): Promise<void>;
}

const made: string[] = [];
// Temp dirs live until this test file's process ends; then they go, whatever the outcome.
process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = 'klm-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Options as the CLI would build them (defaults, no environment), with test overrides. */
export function testOptions(db: DbOptions, over: Partial<Options> = {}): Options {
  const base = buildOptions({}, {});
  const outputDir = over.outputDir ?? tempDir('klm-out-');
  return {
    ...base,
    db,
    outputDir,
    stateFile: join(outputDir, '.memfile-position.json'),
    heartbeatInterval: 0.5,
    reconnectMaxDelay: 0.5,
    ...over,
  };
}

/** A logger that keeps its JSON lines in memory so tests can read what was logged. */
export function memoryLogger(level = 'info'): { logger: winston.Logger; logs: string[] } {
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString().trim());
      cb();
    },
  });
  const logger = winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream })],
  });
  return { logger, logs };
}

/** Starts a Monitor in this process. */
export async function startMonitor(options: Options, level = 'info'): Promise<Running> {
  const { logger, logs } = memoryLogger(level);
  const monitor = new Monitor(options, logger);
  await monitor.start();
  return { monitor, options, logs, stop: () => monitor.stop() };
}

/** Runs a monitor until `n` reservations exist, then stops it; the most leases its queue held at once (counted at every put). */
export async function queuePeakUntilReserved(options: Options, n: number): Promise<number> {
  const monitor = new Monitor(options, memoryLogger('warn').logger);
  try {
    await monitor.start();
    await waitFor(`${n} reservations`, async () => (await hostRows(options.db)).length === n, 120_000, 200);
  } finally {
    await monitor.stop();
  }
  return monitor.queue.peak;
}
