import { InvalidLeaseError, LeaseFields } from '../lease';
import { AddressTable } from './address-table';
import type { LeaseFile } from './lease-file';
import { Line, LineReader } from './line-reader';
import { Header, isHeaderLine, parseHeader, parseRow } from './memfile-row';

/** Leases submitted per chunk; at most two chunks are in flight, so replay memory does not grow with the file. */
export const REPLAY_CHUNK = 4000;
// Bytes of lines per read while replaying: what is alive at once (strings, rows) stays small.
const READ_BYTES = 1 << 20;

export interface ReplayHooks {
  /** Parses lines of `file` (counting and logging bad rows, keeping `file.header`), emitting each valid row. */
  parse(file: LeaseFile, lines: Line[], emit: (f: LeaseFields, line: Line) => void): void;
  /** Queues rows and resolves when they are handled. */
  submit(rows: LeaseFields[]): Promise<void>;
}

// Where a row is: generation ordinal and the byte offset just past it (< 2^42: files under 4 TiB).
const where = (ordinal: number, end: number): number => ordinal * 2 ** 42 + end;

/**
 * Replays generations oldest first, as Kea loads them: the last row per address wins. Pass one
 * notes, per address, where its last valid row is (a typed table, a few bytes per address); pass
 * two reads the same bytes again and submits only those rows, in bounded chunks. `files[i].reader`
 * ends up past the last complete row, so the newest file can be followed from there.
 */
export async function replayGenerations(files: LeaseFile[], hooks: ReplayHooks): Promise<number> {
  const last = new AddressTable();
  const ends: number[] = [];
  for (const [i, file] of files.entries()) {
    for (;;) {
      const lines = await file.reader.read(READ_BYTES);
      if (lines.length === 0) break;
      hooks.parse(file, lines, (f, line) => last.set(f.address, where(i, line.end)));
    }
    ends.push(file.reader.consumed);
  }
  let chunk: LeaseFields[] = [];
  // At most one earlier chunk in flight; a holder object because flush() (a closure) replaces it.
  const pending: { inFlight: Promise<void> | null } = { inFlight: null };
  const flush = async (): Promise<void> => {
    const sent = hooks.submit(chunk);
    sent.catch(() => undefined); // awaited below; this only keeps it from counting as unhandled meanwhile
    chunk = [];
    if (pending.inFlight) await pending.inFlight;
    pending.inFlight = sent;
  };
  for (const [i, file] of files.entries()) {
    const reader = new LineReader(file.fd, 0);
    let header: Header | null = null;
    for (;;) {
      const lines = await reader.read(READ_BYTES);
      if (lines.length === 0) break;
      let done = false;
      for (const line of lines) {
        if (line.end > ends[i]) {
          done = true;
          break;
        }
        if (line.oversized || line.text === '') continue;
        if (isHeaderLine(line.text)) {
          header = quietly(() => parseHeader(line.text));
          continue;
        }
        const f = header && quietly(() => parseRow(line.text, header as Header));
        if (f && last.get(f.address) === where(i, line.end)) {
          chunk.push(f);
          if (chunk.length >= REPLAY_CHUNK) await flush();
        }
      }
      if (done) break;
    }
  }
  if (chunk.length) await flush();
  await pending.inFlight;
  return last.size;
}

/** Pass two: rows were counted and logged in pass one already. */
function quietly<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InvalidLeaseError) return null;
    throw err;
  }
}
