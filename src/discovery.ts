import {
  accessSync,
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { FatalError } from './errors';
import { formatIPv4, formatMac, macFileStem } from './lease';
import type { ReservationResult } from './db/reservations';

/** What `<output-dir>/<aa-bb-cc-dd-ee-ff>.json` holds. */
export interface DiscoveryRecord {
  mac: string;
  ip: string;
  hostname: string | null;
  subnet_id: number;
  first_seen: string;
  last_seen: string;
  source: 'file' | 'database';
  reservation: 'created' | 'updated' | 'unchanged' | 'conflict' | 'foreign';
  host_id: number | null;
}

export type RecordedResult = ReservationResult & { outcome: DiscoveryRecord['reservation'] };

const REMEMBERED_DEVICES = 200_000;

/**
 * Writes one record per device, atomically (temp file in the same directory, then rename).
 *
 * The writes are synchronous on purpose: a record is four small syscalls, and doing them inline
 * costs about half of what the same work costs as thread-pool requests (measured); it also keeps
 * libuv's pool free for the lease-file follower. A batch of 1,000 records blocks for tens of ms.
 */
export class DiscoveryWriter {
  // first_seen per file stem, so a record keeps it without re-reading the file every time.
  private readonly firstSeen = new Map<string, string>();
  // Stems that had a file when we started; any other stem has no file unless we wrote it.
  private existing = new Set<string>();
  private seq = 0;

  constructor(readonly dir: string) {}

  /** Creates the directory if missing and proves it writable; a clear FatalError otherwise. */
  prepare(): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      accessSync(this.dir, constants.W_OK | constants.X_OK);
      const probe = join(this.dir, `.write-probe-${process.pid}`);
      closeSync(openSync(probe, 'w', 0o600));
      unlinkSync(probe);
      this.existing = new Set(
        readdirSync(this.dir)
          .filter((n) => n.endsWith('.json'))
          .map((n) => n.slice(0, -5)),
      );
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new FatalError(`output directory ${this.dir} is not writable (${code}): fix --output-dir or its permissions`);
    }
  }

  /** The record's file: the MAC and nothing else, whatever the lease says. */
  pathFor(mac: Buffer): string {
    return join(this.dir, `${macFileStem(mac)}.json`);
  }

  write(result: RecordedResult, now = new Date()): string {
    const { lease } = result;
    const stem = macFileStem(lease.hwaddr);
    const path = this.pathFor(lease.hwaddr);
    const stamp = now.toISOString();
    const record: DiscoveryRecord = {
      mac: formatMac(lease.hwaddr),
      ip: formatIPv4(lease.address),
      // A lease without a hostname leaves the reservation's name as it was (COALESCE): so does the
      // record. Read back from the record itself, so no hostname is held in memory per device.
      hostname: lease.hostname ?? this.readHostname(path),
      subnet_id: lease.subnetId,
      first_seen: this.firstSeen.get(stem) ?? this.readFirstSeen(stem, path) ?? stamp,
      last_seen: stamp,
      source: lease.source,
      reservation: result.outcome,
      host_id: result.hostId,
    };
    const text = JSON.stringify(record, null, 2) + '\n';
    try {
      this.writeAtomically(stem, path, text);
    } catch (err) {
      // The directory was removed under us: make it again, once, and retry.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      this.writeAtomically(stem, path, text);
    }
    this.rememberFirstSeen(stem, record.first_seen);
    return path;
  }

  /** Stems (MACs as aa-bb-...) that have a record on disk now; reconciliation compares leases with it. */
  recordStems(): Set<string> {
    try {
      return new Set(
        readdirSync(this.dir)
          .filter((n) => n.endsWith('.json'))
          .map((n) => n.slice(0, -5)),
      );
    } catch {
      return new Set();
    }
  }

  // Temp file in the same directory, then rename; a failure at any step (ENOSPC while writing,
  // EROFS, EIO) removes the temp file, so a full disk never leaves a .tmp behind.
  private writeAtomically(stem: string, path: string, text: string): void {
    const tmp = join(this.dir, `.${stem}.json.${process.pid}.${++this.seq}.tmp`);
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      try {
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        // nothing left to clean
      }
      throw err;
    }
  }

  private rememberFirstSeen(stem: string, value: string): void {
    // Bounded: past this many devices the oldest entries fall back to reading the file again.
    if (this.firstSeen.size >= REMEMBERED_DEVICES) {
      const oldest = this.firstSeen.keys().next().value as string;
      this.firstSeen.delete(oldest);
      this.existing.add(oldest);
    }
    this.firstSeen.set(stem, value);
  }

  private readHostname(path: string): string | null {
    try {
      const old = JSON.parse(readFileSync(path, 'utf8')) as Partial<DiscoveryRecord>;
      return typeof old.hostname === 'string' ? old.hostname : null;
    } catch {
      return null; // no record yet (or unreadable): nothing to keep
    }
  }

  private readFirstSeen(stem: string, path: string): string | undefined {
    if (!this.existing.has(stem)) return undefined;
    try {
      const old = JSON.parse(readFileSync(path, 'utf8')) as Partial<DiscoveryRecord>;
      return typeof old.first_seen === 'string' && !Number.isNaN(Date.parse(old.first_seen)) ? old.first_seen : undefined;
    } catch {
      return undefined; // unreadable: this sighting is the first we can vouch for
    }
  }
}
