import { fstatSync, FSWatcher, statSync, watch } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage } from '../errors';
import { classifyLease, InvalidLeaseError, LeaseFields } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import type { LeaseSink } from '../pipeline/intake';
import { QueueClosedError } from '../pipeline/queue';
import { closeLeaseFile, LeaseFile, LeaseFileGenerations, openLeaseFile, openMergedGeneration } from './lease-file';
import { identify, sameGeneration } from './generation';
import { Line, LineReader } from './line-reader';
import { Header, isHeaderLine, parseHeader, parseRow } from './memfile-row';
import { loadPosition, PositionKeeper } from './position';
import { replayGenerations } from './replay';

// Bytes of rows per read while following: two reads in flight bound what waits in memory.
const LIVE_READ_BYTES = 256 << 10;

export interface MemfileSettings {
  leaseFile: string;
  stateFile: string;
  pollIntervalMs: number;
  subnets: ReadonlySet<number>;
}

/**
 * Follows Kea's memfile CSV the way Kea writes it: an append-only journal, renamed to .1 by lease
 * file cleanup and replaced by a new file holding only the header. The old descriptor is drained
 * before switching, and the read position is saved only after the leases before it are written.
 */
export class MemfileSource {
  private readonly files: LeaseFileGenerations;
  private readonly position: PositionKeeper;
  private watcher: FSWatcher | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private pumping: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** Since when the lease file has been missing (null: it is there), and when that was last logged. */
  private missingSince: number | null = null;
  private missingWarnedAt = 0;
  private missingTimer: NodeJS.Timeout | null = null;
  private resuming = false;

  constructor(
    private readonly settings: MemfileSettings,
    private readonly queue: LeaseSink,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.files = new LeaseFileGenerations(settings.leaseFile, log);
    this.position = new PositionKeeper(
      settings.stateFile,
      () => {
        const f = this.files.current;
        return f ? { version: 2, offset: f.handled, file: identify(f.fd) } : null;
      },
      log,
    );
  }

  private get current(): LeaseFile | null {
    return this.files.current;
  }

  async start(): Promise<void> {
    this.metrics.health.set('source', false, 'replaying the lease files');
    // Watching (pinning each new generation) starts before the replay: a replay that waits on a slow
    // database can last several cleanups, and a generation nobody pinned is merged and unlinked.
    this.resuming = true;
    this.watch();
    try {
      await this.resume();
    } finally {
      this.resuming = false;
    }
    if (this.current) this.metrics.health.set('source', true);
    else this.noteMissing();
    this.kick();
  }

  /**
   * No lease file (yet): not ready, and the warning again every dozen poll intervals (a minute by
   * default), so a mistyped --lease-file does not pass for a healthy idle monitor.
   */
  private noteMissing(): void {
    const file = this.settings.leaseFile;
    this.metrics.health.set('source', false, `lease file ${file} does not exist (waiting for Kea to create it)`);
    const now = Date.now();
    const every = Math.min(300_000, Math.max(1000, this.settings.pollIntervalMs * 12));
    if (this.missingSince === null || now - this.missingWarnedAt >= every - 50) {
      this.log.warn('Lease file does not exist yet; waiting for Kea to create it', {
        file,
        ...(this.missingSince !== null ? { waiting_s: Math.round((now - this.missingSince) / 1000) } : {}),
      });
      this.missingSince ??= now;
      this.missingWarnedAt = now;
    }
    this.missingTimer ??= setTimeout(() => {
      this.missingTimer = null;
      this.kick();
    }, every);
    this.missingTimer.unref();
  }

  /** Stops reading; call `finish` after the writer has stopped. Idempotent. */
  requestStop(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.missingTimer) clearTimeout(this.missingTimer);
    this.missingTimer = null;
    this.watcher = null;
    this.pollTimer = null;
  }

  async finish(): Promise<void> {
    this.requestStop();
    await this.pumping;
    await this.position.close();
    this.files.closeAll();
  }

  /**
   * From the saved position if the file it names is provably the same generation, else a replay of
   * the merge (.completed or .2), .1 and the file, as Kea loads them. Opened newest first: rows only
   * move file -> .1 -> merge, so a cleanup running meanwhile can only make a row show up twice, never
   * not at all.
   */
  private async resume(): Promise<void> {
    const saved = await loadPosition(this.settings.stateFile);
    const main = this.settings.leaseFile;
    const live = openLeaseFile(main);
    const one = openLeaseFile(`${main}.1`);
    const two = openMergedGeneration(main);
    if (saved) {
      const why: Record<string, string> = {};
      for (const file of [live, one]) {
        if (!file) continue;
        const check = sameGeneration(saved.file, file.fd);
        if (check.same && fstatSync(file.fd).size >= saved.offset) {
          this.log.info('Resuming the lease file from the saved position', { file: file.name, offset: saved.offset });
          this.files.follow(file);
          closeLeaseFile(two);
          // Resuming inside .1: the current file is the next generation, already pinned.
          if (file === one) {
            if (live && !(live.ino === one.ino && live.dev === one.dev)) this.files.add(live);
            else closeLeaseFile(live);
          } else {
            closeLeaseFile(one);
          }
          await this.startAt(file, saved.offset);
          return;
        }
        why[file.name] = check.same ? 'shorter than the saved offset' : check.why;
      }
      this.log.info('Saved position names no lease file that is provably the same generation; replaying them all', why);
    }
    const files = [two, one, live].filter((f): f is LeaseFile => f !== null);
    if (live) this.files.follow(live);
    try {
      const addresses = await replayGenerations(files, {
        parse: (file, lines, emit) => this.parseLines(file, lines, emit),
        submit: (rows) => this.submit(rows),
      });
      this.log.info('Replayed the lease files', { files: files.map((f) => f.name), addresses });
    } finally {
      closeLeaseFile(one);
      closeLeaseFile(two);
    }
    if (live) live.handled = live.reader.consumed;
    await this.position.save(true);
  }

  /** Positions a freshly opened file at `offset`; the header is its first line. */
  private async startAt(file: LeaseFile, offset: number): Promise<void> {
    file.reader = new LineReader(file.fd, offset);
    file.handled = offset;
    if (offset > 0) {
      const first = await new LineReader(file.fd, 0).read(64 * 1024);
      if (first.length && isHeaderLine(first[0].text)) file.header = this.headerOrNull(first[0].text, file);
    }
  }

  private openFile(name: string): LeaseFile | null {
    return openLeaseFile(name);
  }

  private headerOrNull(text: string, file: LeaseFile): Header | null {
    try {
      return parseHeader(text);
    } catch (err) {
      this.reject(file, 'bad-header', errorMessage(err), text);
      return null;
    }
  }

  private reject(file: LeaseFile, reason: string, error: string, text: string): void {
    this.metrics.inc(...M.rejected, { source: 'memfile', reason });
    this.log.warn('Malformed lease file row skipped', { file: file.name, error, row: text.slice(0, 160) });
  }

  private parseLines(file: LeaseFile, lines: Line[], emit: (f: LeaseFields, line: Line) => void): void {
    for (const line of lines) {
      if (line.oversized) {
        this.reject(file, 'oversized', 'row longer than 64 KiB', line.text);
        continue;
      }
      if (line.text.trim() === '') continue;
      if (isHeaderLine(line.text)) {
        file.header = this.headerOrNull(line.text, file);
        continue;
      }
      if (!file.header) {
        this.reject(file, 'no-header', 'row before any valid header', line.text);
        continue;
      }
      try {
        emit(parseRow(line.text, file.header), line);
        this.metrics.inc(...M.received, { source: 'memfile' });
      } catch (err) {
        if (!(err instanceof InvalidLeaseError)) throw err;
        this.reject(file, 'invalid-row', err.message, line.text);
      }
    }
  }

  /**
   * Queues the live leases among `rows` and resolves when all are handled. The queue's limit bounds
   * what is queued; the rest wait in `put` (callers pass a bounded number of rows).
   */
  private submit(rows: LeaseFields[], readAt?: number): Promise<void> {
    const now = Date.now() / 1000;
    const handled: Promise<void>[] = [];
    for (const f of rows) {
      const c = classifyLease(f, 'memfile', this.settings.subnets, now);
      if (c.kind === 'not-selected') {
        // Kea wrote this file: its subnets are real, so they keep their own label.
        this.metrics.subnets.confirm(c.subnetId);
        this.metrics.inc(...M.notSelected, { reason: c.reason, subnet_id: c.subnetId });
        continue;
      }
      if (c.kind !== 'live') {
        this.metrics.inc(...M.ignored, { reason: c.reason });
        continue;
      }
      // Read time, for the read -> reservation latency (live rows only, not the replay).
      if (readAt !== undefined) c.lease.committedAt = readAt;
      handled.push(this.queue.put(c.lease));
    }
    return Promise.all(handled).then(() => undefined);
  }

  private watch(): void {
    const dir = dirname(this.settings.leaseFile);
    try {
      this.watcher = watch(dir, { persistent: true }, () => {
        this.files.pin();
        this.kick();
      });
      this.watcher.on('error', (err) => {
        this.log.warn('Lost the inotify watch on the lease directory; polling instead', { error: errorMessage(err) });
        this.watcher?.close();
        this.watcher = null;
        this.startPolling();
      });
      this.log.info('Watching the lease file', { file: this.settings.leaseFile, via: 'inotify' });
    } catch (err) {
      this.log.warn('Cannot watch the lease directory; polling instead', {
        dir,
        error: errorMessage(err),
        poll_interval_s: this.settings.pollIntervalMs / 1000,
      });
      this.startPolling();
    }
  }

  private startPolling(): void {
    if (this.stopped || this.pollTimer) return;
    this.pollTimer = setInterval(() => {
      this.files.pin();
      this.kick();
    }, this.settings.pollIntervalMs);
  }

  /** Runs one pump at a time; a kick during a pump makes it go round once more. */
  private kick(): void {
    if (this.stopped || this.resuming) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = this.pump()
      .catch((err: unknown) => {
        if (err instanceof QueueClosedError) return;
        this.log.error('Reading the lease file failed; retrying', { error: errorMessage(err) });
        this.metrics.health.set('source', false, `reading the lease file failed: ${errorMessage(err)}`);
        if (!this.watcher) this.startPolling();
        else setTimeout(() => this.kick(), this.settings.pollIntervalMs).unref();
      })
      .finally(() => {
        this.pumping = null;
        if (this.again && !this.stopped) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async pump(): Promise<void> {
    do {
      this.again = false;
      if (!this.current) {
        const file = this.openFile(this.settings.leaseFile);
        if (!file) {
          this.noteMissing();
          return;
        }
        this.missingSince = null;
        this.metrics.health.set('source', true);
        this.files.follow(file);
      }
      await this.drain();
      await this.checkRotation();
    } while (this.again && !this.stopped);
  }

  /**
   * Reads and writes everything available in the current file. The next read is parsed and queued
   * while the one before it is still being written (at most two in flight); the position moves
   * past a read only once it and every read before it are handled.
   */
  private async drain(): Promise<void> {
    const file = this.current;
    if (!file) return;
    let inFlight: Promise<void> | null = null;
    try {
      while (!this.stopped) {
        const lines = await file.reader.read(LIVE_READ_BYTES);
        if (lines.length === 0) return;
        const readAt = Date.now();
        const rows: LeaseFields[] = [];
        this.parseLines(file, lines, (f) => rows.push(f));
        const end = lines[lines.length - 1].end;
        const before = inFlight;
        const sent: Promise<void> = this.submit(rows, readAt).then(async () => {
          await before;
          file.handled = end;
          this.position.schedule();
        });
        sent.catch(() => undefined); // awaited below or in finally; this only keeps it from counting as unhandled meanwhile
        if (before) await before;
        inFlight = sent;
      }
    } finally {
      if (inFlight) await inFlight;
    }
  }

  /** After cleanup renamed the file away: the old descriptor is drained, then the next generation followed. */
  private async checkRotation(): Promise<void> {
    const file = this.current;
    if (!file || this.stopped) return;
    this.files.pin();
    if (!this.files.peek()) {
      const st = statSync(this.settings.leaseFile, { throwIfNoEntry: false });
      if (st && st.ino === file.ino && st.dev === file.dev && st.size < file.reader.consumed) {
        this.log.warn('Lease file shrank in place; reading it again from the start', { file: file.name });
        await this.switchTo(this.openFile(this.settings.leaseFile));
      }
      return;
    }
    await this.drain();
    if (this.stopped) return;
    if (file.reader.pendingBytes > 0) {
      this.reject(file, 'truncated', 'rotated file ends in an incomplete row', '');
    }
    this.metrics.inc(...M.rotations);
    this.log.info('Lease file cleanup seen; following the new file', { file: this.settings.leaseFile });
    this.files.advance();
    await this.position.save(true);
    this.again = true;
  }

  private async switchTo(next: LeaseFile | null): Promise<void> {
    this.files.follow(next);
    await this.position.save(true);
  }
}
