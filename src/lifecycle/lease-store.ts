/**
 * Kea's lease store as it stands now, read once: lease4 (database mode) or the memfile generations
 * .2, .1 and the current file (file mode), the last row per address winning as when Kea loads them.
 * What `plan`, `reservations list` and `prune` consult; the daemon follows the same store live.
 */
import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ClientBase } from 'pg';
import { classifyLease, Classified, InvalidLeaseError, LeaseFields, leaseKey, LeaseSource } from '../lease';
import { closeLeaseFile, LeaseFile, openLeaseFile, openMergedGeneration } from '../sources/lease-file';
import { checkLeaseFile } from '../sources/lease-file-check';
import { Header, isHeaderLine, parseHeader, parseRow } from '../sources/memfile-row';

export interface DeviceSeen {
  /** A live lease (state 0, not expired, valid_lifetime > 0) for this MAC in this subnet now. */
  live: boolean;
  /** Latest expiry of any lease the store still shows for this MAC and subnet (epoch seconds), or null. */
  lastSeen: number | null;
}

export interface LeaseStore {
  source: LeaseSource;
  /** The latest row per address, in the order the store gives them (file order; lease4 by address). */
  latest: LeaseFields[];
  /** Per leaseKey (MAC/subnet). */
  devices: Map<string, DeviceSeen>;
  /** Rows refused as malformed (file mode). */
  rejected: number;
}

function noteDevice(devices: Map<string, DeviceSeen>, f: LeaseFields, now: number): void {
  if (f.hwaddr.length === 0) return;
  const key = leaseKey(f);
  const d = devices.get(key) ?? { live: false, lastSeen: null };
  if (f.validLifetime > 0) d.lastSeen = Math.max(d.lastSeen ?? 0, Math.min(f.expire, now));
  devices.set(key, d);
}

function finish(
  source: LeaseSource,
  byAddress: Map<number, LeaseFields>,
  devices: Map<string, DeviceSeen>,
  rejected: number,
  now: number,
): LeaseStore {
  const latest = [...byAddress.values()];
  for (const f of latest) {
    if (classifyLease(f, source, new Set(), now).kind === 'live') {
      const d = devices.get(leaseKey(f));
      if (d) {
        d.live = true;
        d.lastSeen = now;
      }
    }
  }
  return { source, latest, devices, rejected };
}

/** A row the store refused, as the daemon logs it. */
export interface RejectedRow {
  file: string;
  error: string;
  row: string;
}

/**
 * Memfile: every generation, read oldest first (the merge, .1, the file) but opened newest first, so
 * a cleanup running meanwhile cannot move rows past the reader; a missing generation is skipped.
 */
export async function readMemfileStore(
  leaseFile: string,
  nowSeconds = Date.now() / 1000,
  onRejected?: (r: RejectedRow) => void,
): Promise<LeaseStore> {
  const byAddress = new Map<number, LeaseFields>();
  const devices = new Map<string, DeviceSeen>();
  let rejected = 0;
  checkLeaseFile(leaseFile);
  const newestFirst = [openLeaseFile(leaseFile), openLeaseFile(`${leaseFile}.1`), openMergedGeneration(leaseFile)];
  const files = newestFirst.filter((f): f is LeaseFile => f !== null).reverse();
  try {
    for (const file of files) rejected += await readGeneration(file, byAddress, devices, nowSeconds, onRejected);
  } finally {
    for (const file of files) closeLeaseFile(file);
  }
  if (byAddress.size === 0 && !existsSync(leaseFile)) {
    throw new InvalidLeaseError(`lease file ${leaseFile} does not exist (give --lease-file, or --use-database-events)`);
  }
  return finish('memfile', byAddress, devices, rejected, nowSeconds);
}

/** One generation's rows into `byAddress` (the last row per address wins); returns the malformed rows. */
async function readGeneration(
  file: LeaseFile,
  byAddress: Map<number, LeaseFields>,
  devices: Map<string, DeviceSeen>,
  nowSeconds: number,
  onRejected?: (r: RejectedRow) => void,
): Promise<number> {
  let rejected = 0;
  let header: Header | null = null;
  const input = createReadStream('', { fd: file.fd, encoding: 'utf8', autoClose: false, start: 0 });
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const raw of lines) {
    const line = raw.trimEnd();
    if (line === '') continue;
    try {
      if (isHeaderLine(line)) {
        header = parseHeader(line);
        continue;
      }
      if (!header) throw new InvalidLeaseError('row before the header');
      const f = parseRow(line, header);
      // Re-insert so the address takes its latest position, as a replay would.
      byAddress.delete(f.address);
      byAddress.set(f.address, f);
      noteDevice(devices, f, nowSeconds);
    } catch (err) {
      if (!(err instanceof InvalidLeaseError)) throw err;
      rejected++;
      onRejected?.({ file: file.name, error: err.message, row: line.slice(0, 160) });
    }
  }
  return rejected;
}

interface Lease4Row {
  address: number;
  hwaddr: Buffer | null;
  subnet_id: number;
  hostname: string | null;
  state: number;
  valid_lifetime: number;
  expire: number;
}

const PAGE = 20_000;

/** lease4, in keyset pages on its primary key. */
export async function readLease4Store(db: ClientBase, nowSeconds = Date.now() / 1000): Promise<LeaseStore> {
  const byAddress = new Map<number, LeaseFields>();
  const devices = new Map<string, DeviceSeen>();
  for (let after = -1; ;) {
    const { rows } = await db.query<Lease4Row>(
      `SELECT address, hwaddr, subnet_id, hostname, state, valid_lifetime, floor(extract(epoch FROM expire))::bigint AS expire
         FROM lease4 WHERE address > $1 ORDER BY address LIMIT ${PAGE}`,
      [after],
    );
    for (const r of rows) {
      const f: LeaseFields = {
        address: Number(r.address),
        hwaddr: r.hwaddr ?? Buffer.alloc(0),
        subnetId: Number(r.subnet_id),
        hostname: r.hostname,
        state: Number(r.state),
        validLifetime: Number(r.valid_lifetime),
        expire: Number(r.expire),
      };
      byAddress.set(f.address, f);
      noteDevice(devices, f, nowSeconds);
    }
    if (rows.length < PAGE) break;
    after = Number(rows[rows.length - 1].address);
  }
  return finish('database', byAddress, devices, 0, nowSeconds);
}

/** The live leases of a store, classified as the sources classify them (subnet rule included). */
export function classifyStore(store: LeaseStore, subnets: ReadonlySet<number>, nowSeconds = Date.now() / 1000): Classified[] {
  return store.latest.map((f) => classifyLease(f, store.source, subnets, nowSeconds));
}
