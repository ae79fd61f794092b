import type { Logger } from './logger';

const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * First SIGTERM/SIGINT asks for a graceful stop; a second one forces the exit.
 * Returns a function that removes the handlers.
 */
export function handleStopSignals(stop: () => Promise<void>, logger: Logger): () => void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn('Second signal: exiting without finishing', { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info('Stopping: finishing the batch in flight', { signal });
    stop().catch((err: unknown) => logger.error('Stop failed', { error: String(err) }));
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  return () => {
    for (const s of SIGNALS) process.off(s, onSignal);
  };
}
