import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import type { Logger } from '../logger';
import { LineReader } from './line-reader';
import type { Header } from './memfile-row';

/** One generation of the lease file, held open by descriptor so a rename or unlink cannot take it away. */
export interface LeaseFile {
  fd: number;
  dev: number;
  ino: number;
  reader: LineReader;
  header: Header | null;
  name: string;
  /** Offset past the last row whose lease has been written: what is safe to save. */
  handled: number;
}

/**
 * Opens synchronously on purpose: called from filesystem events, it must not wait in libuv's
 * thread pool behind other file work while lease file cleanup unlinks the file.
 */
export function openLeaseFile(name: string, offset = 0): LeaseFile | null {
  let fd: number;
  try {
    fd = openSync(name, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const st = fstatSync(fd);
  return { fd, dev: st.dev, ino: st.ino, reader: new LineReader(fd, offset), header: null, name, handled: offset };
}

export function closeLeaseFile(file: LeaseFile | null | undefined): void {
  if (!file) return;
  try {
    closeSync(file.fd);
  } catch {
    // already closed
  }
}

const same = (a: { ino: number; dev: number }, b: { ino: number; dev: number }): boolean => a.ino === b.ino && a.dev === b.dev;

/**
 * The file being read and the newer generations already pinned, oldest first. Lease file cleanup
 * renames the file to .1 and starts a new one; pinning on every filesystem event holds each
 * generation before kea-lfc can unlink it, so falling behind never means skipping a file.
 */
export class LeaseFileGenerations {
  current: LeaseFile | null = null;
  private readonly pending: LeaseFile[] = [];

  constructor(
    private readonly path: string,
    private readonly log: Logger,
  ) {}

  /** Makes `file` the one being read, closing the previous one. */
  follow(file: LeaseFile | null): void {
    if (this.current && this.current !== file) closeLeaseFile(this.current);
    this.current = file;
  }

  /** Queues an already opened newer generation. */
  add(file: LeaseFile): void {
    this.pending.push(file);
  }

  /** The next generation, still pinned (so pin() keeps knowing it) until `advance`. */
  peek(): LeaseFile | undefined {
    return this.pending[0];
  }

  /** Follows the next generation. */
  advance(): LeaseFile | undefined {
    const next = this.pending.shift();
    if (next) this.follow(next);
    return next;
  }

  /** Opens the file now at the lease file's name if it is a generation not held yet. */
  pin(): void {
    if (!this.current) return;
    try {
      const st = statSync(this.path, { throwIfNoEntry: false });
      if (!st) return; // renamed, new file not created yet: its creation brings another event
      const known = [this.current, ...this.pending];
      const isKnown = (f: { ino: number; dev: number }): boolean => known.some((k) => same(k, f));
      if (isKnown(st)) return;
      // Normally .1 is the file we hold. If it is another one, we fell more than one cleanup
      // behind: that file comes before the new one (LFC has not merged and unlinked it yet).
      const older = openLeaseFile(`${this.path}.1`);
      if (older && !isKnown(older) && !same(older, st)) {
        this.log.warn('Fell behind by more than one lease file cleanup; reading the skipped file', { file: older.name });
        this.pending.push(older);
        known.push(older);
      } else {
        closeLeaseFile(older);
      }
      const file = openLeaseFile(this.path);
      if (file && !isKnown(file)) this.pending.push(file);
      else closeLeaseFile(file);
    } catch (err) {
      this.log.warn('Cannot open the new lease file yet', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  closeAll(): void {
    for (const f of [this.current, ...this.pending.splice(0)]) closeLeaseFile(f);
    this.current = null;
  }
}
