import {
  accessSync,
  Dir,
  closeSync,
  constants,
  mkdirSync,
  openSync,
  opendirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { FatalError } from './errors';
import { formatIPv4, formatMac, LeaseSource, macFileStem } from './lease';
import { RedfishInfo, redfishFromRecord } from './redfish/service-root';
import type { ReservationResult } from './domain/outcomes';

// Directory entries read per system call while listing the records.
const STEMS_BUFFER = 1024;

/** What `<output-dir>/<aa-bb-cc-dd-ee-ff>.json` holds. */
export interface DiscoveryRecord {
  mac: string;
  ip: string;
  hostname: string | null;
  subnet_id: number;
  first_seen: string;
  last_seen: string;
  source: LeaseSource;
  reservation: 'created' | 'updated' | 'unchanged' | 'conflict' | 'foreign';
  host_id: number | null;
  /** What the device's Redfish service root said (--redfish-probe); absent until a probe ended. */
  redfish?: RedfishInfo;
}

export type RecordedResult = ReservationResult & { outcome: DiscoveryRecord['reservation'] };

/**
 * Writes one record per device, atomically (temp file in the same directory, then rename).
 *
 * The writes are synchronous on purpose: a record is a handful of small syscalls, and doing them
 * inline costs about half of what the same work costs as thread-pool requests (measured); the
 * caller (pipeline/records.ts) runs them in short slices between database round trips. Nothing is
 * kept per device: first_seen and a kept hostname are read back from the record on disk.
 */
export class DiscoveryWriter {
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
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new FatalError(`output directory ${this.dir} is not writable (${code}): fix --output-dir or its permissions`);
    }
  }

  /** The record's file: the MAC and nothing else, whatever the lease says. */
  pathFor(mac: Buffer): string {
    return join(this.dir, `${macFileStem(mac)}.json`);
  }

  /** `redfish`: a probe's newer result; without it the record keeps the one it had. */
  write(result: RecordedResult, now = new Date(), redfish: RedfishInfo | null = null): string {
    const { lease } = result;
    const stem = macFileStem(lease.hwaddr);
    const path = this.pathFor(lease.hwaddr);
    const stamp = now.toISOString();
    const old = readRecord(path);
    const probed = redfish ?? redfishFromRecord(old?.redfish);
    const record: DiscoveryRecord = {
      mac: formatMac(lease.hwaddr),
      ip: formatIPv4(lease.address),
      // A lease without a hostname leaves the reservation's name as it was (COALESCE): so does the record.
      hostname: lease.hostname ?? (typeof old?.hostname === 'string' ? old.hostname : null),
      subnet_id: lease.subnetId,
      first_seen: typeof old?.first_seen === 'string' && !Number.isNaN(Date.parse(old.first_seen)) ? old.first_seen : stamp,
      last_seen: stamp,
      source: lease.source,
      reservation: result.outcome,
      host_id: result.hostId,
      ...(probed ? { redfish: probed } : {}),
    };
    this.writeText(stem, path, JSON.stringify(record, null, 2) + '\n');
    return path;
  }

  /**
   * A probe's result into the device's record as it stands; no record (the device was never
   * reserved, or its record was removed): nothing to do, false.
   */
  writeRedfish(mac: Buffer, redfish: RedfishInfo): boolean {
    const path = this.pathFor(mac);
    const old = readRecord(path);
    if (!old || typeof old.mac !== 'string') return false;
    this.writeText(macFileStem(mac), path, JSON.stringify({ ...old, redfish }, null, 2) + '\n');
    return true;
  }

  /** The `redfish` field of the device's record on disk, checked; null when there is none. */
  redfishOf(mac: Buffer): RedfishInfo | null {
    return redfishFromRecord(readRecord(this.pathFor(mac))?.redfish);
  }

  private writeText(stem: string, path: string, text: string): void {
    try {
      this.writeAtomically(stem, path, text);
    } catch (err) {
      // The directory was removed under us: make it again, once, and retry.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      this.writeAtomically(stem, path, text);
    }
  }

  /** Stems (MACs as aa-bb-...) that have a record on disk now; reconciliation compares leases with it. */
  recordStems(): Set<string> {
    const stems = new Set<string>();
    let dir: Dir;
    try {
      dir = opendirSync(this.dir, { bufferSize: STEMS_BUFFER });
    } catch {
      return stems;
    }
    // One entry at a time, not readdirSync's array of every name: 200,000 records are one pass's peak memory.
    try {
      for (let e = dir.readSync(); e !== null; e = dir.readSync()) {
        if (e.name.endsWith('.json')) stems.add(e.name.slice(0, -5));
      }
    } catch {
      // The directory went away mid-read: what was read is what exists.
    } finally {
      dir.closeSync();
    }
    return stems;
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
}

/** The record now on disk, if any and readable; a first sighting (ENOENT) costs one stat, no exception. */
function readRecord(path: string): Partial<DiscoveryRecord> | null {
  if (!statSync(path, { throwIfNoEntry: false })) return null;
  try {
    const old: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return old !== null && typeof old === 'object' ? old : null;
  } catch {
    return null; // unreadable or not ours: this sighting is the first we can vouch for
  }
}
