import { writeSync } from 'node:fs';
import TransportStream from 'winston-transport';

// triple-beam's key for the formatted line (winston's formats set it; the same global symbol).
const MESSAGE = Symbol.for('message');

// Lines are batched and written with one write(2) per event-loop turn instead of one per line;
// a batch past this size is written at once, so memory stays bounded in a burst.
const BATCH_BYTES = 64 * 1024;

// Levels written at once, with what is pending before them: the last line before a crash or a
// forced exit must not wait for the next turn of the event loop.
const URGENT = new Set(['error', 'warn']);

const live = new Set<StderrTransport>();
let exitHooked = false;

/** Blocks for a millisecond: how a full pipe (journald busy) is waited for without spinning. */
const pause = (() => {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  return () => Atomics.wait(cell, 0, 0, 1);
})();

/**
 * Writes all of `data` to `fd`. fd 2 may be non-blocking (Node makes it so once process.stderr is
 * touched and it is a pipe or socket): EAGAIN waits and retries, so lines are neither lost nor
 * reordered. Any other error (stderr closed) drops the batch: there is nowhere left to say so.
 */
function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off, data.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      pause();
    }
  }
}

/**
 * A winston transport for stderr that costs one string push per line. Unlike winston's Console
 * transport (one write(2) and one setImmediate per line), lines are joined and written together
 * on the next event-loop turn, at BATCH_BYTES, at once for error/warn, on flush() and at exit.
 */
export class StderrTransport extends TransportStream {
  private pending: string[] = [];
  private bytes = 0;
  private scheduled = false;
  private readonly onTick = (): void => {
    this.scheduled = false;
    this.flush();
  };

  constructor(private readonly fd = 2) {
    super();
    live.add(this);
    if (!exitHooked) {
      exitHooked = true;
      // process.exit() and uncaught exceptions skip the event loop: write what is pending.
      process.on('exit', () => {
        for (const t of live) t.flush();
      });
    }
  }

  override log(info: Record<string | symbol, unknown>, callback: () => void): void {
    const line = `${String(info[MESSAGE])}\n`;
    this.pending.push(line);
    this.bytes += line.length;
    if (this.bytes >= BATCH_BYTES || URGENT.has(info.level as string)) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.onTick);
    }
    callback();
  }

  /** Writes everything pending, synchronously. */
  flush(): void {
    if (this.pending.length === 0) return;
    const text = this.pending.length === 1 ? this.pending[0] : this.pending.join('');
    this.pending = [];
    this.bytes = 0;
    writeAll(this.fd, Buffer.from(text, 'utf8'));
  }

  // Called by the Writable machinery when the logger ends (flushLogger).
  override _final(callback: () => void): void {
    this.flush();
    live.delete(this);
    callback();
  }
}
