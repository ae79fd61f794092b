import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { errorMessage } from '../errors';
import type { Logger } from '../logger';
import { isDirectoryError, permissionDenied } from './lease-file-check';
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
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'EACCES') throw permissionDenied(name);
    throw err;
  }
  const st = fstatSync(fd);
  if (st.isDirectory()) {
    closeSync(fd);
    throw isDirectoryError(name);
  }
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
 * The merged generation: what kea-lfc made of .2 and .1. kea-lfc writes `.output`, renames it to
 * `.completed`, removes .2, then .1, then renames `.completed` to .2; between those steps only
 * `.completed` holds the merged rows, and Kea itself loads `.completed` instead of .2 and .1 when it
 * exists. Each step only moves forward, so alternating the two names finds the merge in a few tries.
 */
export function openMergedGeneration(path: string): LeaseFile | null {
  for (let i = 0; i < 3; i++) {
    const file = openLeaseFile(`${path}.completed`) ?? openLeaseFile(`${path}.2`);
    if (file) return file;
  }
  return null;
}

/**
 * Whether `next` is provably the generation right after `prev`. Kea renames the file to .1 and
 * creates the next one; kea-lfc removes .1 only after merging it. So while `prev` is still linked
 * nothing was merged past it; once unlinked, its successor was born before that unlink (which set
 * prev's ctime). A generation born later means at least one generation in between.
 */
export function follows(prev: LeaseFile, next: LeaseFile): boolean {
  try {
    const p = fstatSync(prev.fd, { bigint: true });
    if (p.nlink > 0n) return true;
    const n = fstatSync(next.fd, { bigint: true });
    if (n.birthtimeNs === 0n) return false; // no birth time: cannot prove it
    return n.birthtimeNs < p.ctimeNs;
  } catch {
    return false;
  }
}

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
      const newest = known[known.length - 1];
      const older = openLeaseFile(`${this.path}.1`);
      const file = openLeaseFile(this.path);
      const next: LeaseFile[] = [];
      if (older && !isKnown(older) && !(file && same(older, file))) {
        this.log.warn('Fell behind by more than one lease file cleanup; reading the skipped file', { file: older.name });
        next.push(older);
      } else {
        closeLeaseFile(older);
      }
      if (file && !isKnown(file)) next.push(file);
      else closeLeaseFile(file);
      if (next.length > 0 && !follows(newest, next[0])) {
        // Generations came and went (merged and unlinked) while this process could not look: the
        // merge holds them. Reading it again costs renewals, which the writer turns into no-ops.
        const merged = openMergedGeneration(this.path);
        if (merged) {
          this.log.warn('Lease file generations were merged before they could be read; reading the merge again', {
            file: merged.name,
          });
          next.unshift(merged);
        }
      }
      this.pending.push(...next);
    } catch (err) {
      this.log.warn('Cannot open the new lease file yet', { error: errorMessage(err) });
    }
  }

  closeAll(): void {
    for (const f of [this.current, ...this.pending.splice(0)]) closeLeaseFile(f);
    this.current = null;
  }
}
