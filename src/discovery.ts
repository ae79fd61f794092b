import { constants } from 'node:fs';
import { access, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
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
  reservation: 'created' | 'updated' | 'unchanged' | 'conflict';
  host_id: number | null;
}

/** Writes one record per device, atomically (temp file in the same directory, then rename). */
export class DiscoveryWriter {
  // first_seen per file stem, so a record keeps it without re-reading the file every time.
  private readonly firstSeen = new Map<string, string>();
  private seq = 0;

  constructor(readonly dir: string) {}

  /** Creates the directory if missing and proves it writable; a clear FatalError otherwise. */
  async prepare(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o755 });
      await access(this.dir, constants.W_OK | constants.X_OK);
      const probe = join(this.dir, `.write-probe-${process.pid}`);
      await (await open(probe, 'w', 0o600)).close();
      await unlink(probe);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new FatalError(`output directory ${this.dir} is not writable (${code}): fix --output-dir or its permissions`);
    }
  }

  pathFor(mac: Buffer): string {
    return join(this.dir, `${macFileStem(mac)}.json`);
  }

  async write(result: ReservationResult & { outcome: DiscoveryRecord['reservation'] }, now = new Date()): Promise<string> {
    const { lease } = result;
    const stem = macFileStem(lease.hwaddr);
    const path = join(this.dir, `${stem}.json`);
    const stamp = now.toISOString();
    const record: DiscoveryRecord = {
      mac: formatMac(lease.hwaddr),
      ip: formatIPv4(lease.address),
      hostname: lease.hostname,
      subnet_id: lease.subnetId,
      first_seen: this.firstSeen.get(stem) ?? (await this.readFirstSeen(path)) ?? stamp,
      last_seen: stamp,
      source: lease.source,
      reservation: result.outcome,
      host_id: result.hostId,
    };
    this.rememberFirstSeen(stem, record.first_seen);
    const tmp = join(this.dir, `.${stem}.json.${process.pid}.${++this.seq}.tmp`);
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(JSON.stringify(record, null, 2) + '\n');
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    return path;
  }

  private rememberFirstSeen(stem: string, value: string): void {
    // Bounded: past this many devices the oldest entries fall back to reading the file again.
    if (this.firstSeen.size >= 200_000) this.firstSeen.delete(this.firstSeen.keys().next().value as string);
    this.firstSeen.set(stem, value);
  }

  private async readFirstSeen(path: string): Promise<string | undefined> {
    try {
      const old = JSON.parse(await readFile(path, 'utf8')) as Partial<DiscoveryRecord>;
      return typeof old.first_seen === 'string' && !Number.isNaN(Date.parse(old.first_seen)) ? old.first_seen : undefined;
    } catch {
      return undefined; // missing or unreadable: this sighting is the first we can vouch for
    }
  }
}
