import { main } from './cli';

/**
 * process.exit() drops what stdout and stderr still hold: a pipe to a slower reader (`plan --json |
 * less`) takes 64 KiB, and the rest waits in this process. Exit once both have handed everything over.
 */
function exitWhenFlushed(code: number): void {
  let pending = 2;
  const done = (): void => {
    if (--pending === 0) process.exit(code);
  };
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.writableLength === 0) done();
    else stream.write('', done);
  }
}

main().then(
  (code) => exitWhenFlushed(code),
  (err: unknown) => {
    process.stderr.write(`kea-lease-monitor: ${String(err)}\n`);
    exitWhenFlushed(1);
  },
);
