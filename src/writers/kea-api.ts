import { classifyDbError } from '../db/errors';
import { confirmLiveLeases } from '../db/live-leases';
import type { Database } from '../db/pool';
import { fatalFromError } from '../db/privileges';
import { errorMessage, FatalError } from '../errors';
import { KEA_CONFLICT, KEA_ERROR, KEA_UNSUPPORTED, KeaCommandError, KeaControlSocket } from '../kea/control-socket';
import { HostCmds, KeaHost, REQUIRED_COMMANDS } from '../kea/host-cmds';
import { formatIPv4, formatMac, Lease, leaseKey } from '../lease';
import type { Logger } from '../logger';
import { M, Metrics } from '../metrics';
import { makeMark, OWNER_KEY, readMark } from '../ownership';
import type { ReservationBackend } from './backend';
import { KnownReservations } from './known';
import { ErrorClass } from '../domain/error-class';
import { ReservationResult, supersededInBatch } from '../domain/outcomes';

export interface KeaApiSettings {
  socketPath: string;
  /** Commands in flight at once. */
  concurrency: number;
  timeoutMs: number;
  /** Devices remembered so renewals cost no call. */
  knownLimit?: number;
  /** How long a 'foreign' or 'conflict' answer is trusted before Kea is asked again. */
  negativeTtlMs?: number;
  /**
   * Database mode: the pool that confirms each database-sourced lease against lease4 before any
   * call. Without one, such a lease is never written ('stale').
   */
  db?: Database | null;
}

// Kea's answers when a row it is asked to insert collides with an identifier or address.
const DUPLICATE = /duplicate/i;
// Result-1 answers that are about Kea's hosts database, not the lease: retry the batch. Any other
// error answer about one lease is that lease's failure (retrying cannot help, and must not hold
// up the rest): subnet not configured, address outside it, or a text no release has used yet.
const HOSTS_DB_DOWN = /not available|connectivity lost|unusable|read-only|timed out|timeout/i;

/** Kea answered this lease's command with an error about the lease itself. */
function refusedByKea(err: unknown): err is KeaCommandError {
  return err instanceof KeaCommandError && (err.result === KEA_ERROR || err.result === KEA_CONFLICT) && !HOSTS_DB_DOWN.test(err.text);
}

/** lease4 could not be read: the batch is retried, or the process stops on a missing privilege. */
class LeaseCheckError extends Error {
  override name = 'LeaseCheckError';
  constructor(override readonly cause: unknown) {
    super(`checking leases against lease4: ${errorMessage(cause)}`);
  }
}

function newContext(lease: Lease): Record<string, unknown> {
  return { [OWNER_KEY]: makeMark(lease.source) };
}

function hasMark(h: KeaHost): boolean {
  return h.userContext !== null && readMark(JSON.stringify(h.userContext)) !== null;
}

/**
 * Writes reservations through kea-dhcp4's control socket with the host_cmds hook: Kea enforces its
 * own uniqueness rules, updates host_cache, and works with any hosts backend (PostgreSQL, MySQL).
 * Same rules as the SQL writer: only hosts carrying the mark are changed, a host without it is
 * 'foreign', an address held by another identifier is a 'conflict', and a renewal that matches what
 * is known costs no call at all.
 */
export class KeaApiBackend implements ReservationBackend {
  readonly kind = 'kea-api';
  // Its conflict checks and writes are separate commands: two batches at once could interleave.
  readonly serialisesWrites = false;
  private readonly cmds: HostCmds;
  private readonly known: KnownReservations;
  private hasUpdate = false;
  /**
   * Add before looking: one command per new device. Only where Kea's own database enforces both
   * uniqueness rules in one statement (no host_cache, whose add would accept what the database then
   * refuses, and ip-reservations-unique on), and only after the known map was filled from Kea, so
   * that a refused add is rare.
   */
  private addFirst = false;

  constructor(
    private readonly settings: KeaApiSettings,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.cmds = new HostCmds(
      new KeaControlSocket(settings.socketPath, {
        timeoutMs: settings.timeoutMs,
        concurrency: settings.concurrency,
        observe: (command, result) => metrics.inc(...M.keaApiCommands, { command, result }),
      }),
    );
    this.known = new KnownReservations(settings.knownLimit ?? 200_000);
  }

  /** host_cmds must be loaded (FatalError otherwise); then learn what Kea already holds. */
  async preflight(): Promise<void> {
    const commands = await this.cmds.listCommands();
    const missing = REQUIRED_COMMANDS.filter((c) => !commands.includes(c));
    if (missing.length > 0) {
      throw new FatalError(
        `--writer kea-api: kea-dhcp4 at ${this.settings.socketPath} does not offer ${missing.join(', ')}; ` +
          'load the host_cmds hook (libdhcp_host_cmds.so) and a writable hosts-database',
      );
    }
    this.hasUpdate = commands.includes('reservation-update');
    try {
      await this.prime(commands);
    } catch (err) {
      // Not fatal: each device is then looked up on first sight.
      this.log.warn('Cannot list the reservations Kea already has; each device is looked up on first sight', { error: errorMessage(err) });
      this.addFirst = false;
    }
    this.log.info("Writing reservations through Kea's control socket", {
      socket: this.settings.socketPath,
      update: this.hasUpdate ? 'reservation-update' : 'reservation-del + reservation-add',
      new_devices: this.addFirst ? 'reservation-add first' : 'reservation-get, reservation-get-by-address, reservation-add',
      known: this.known.size,
    });
  }

  fatal(err: unknown): Promise<FatalError> {
    const db = this.settings.db;
    if (err instanceof LeaseCheckError && db) {
      return fatalFromError(err.cause, db.target, db.options.user, () => db.connect(), { lease4Required: true });
    }
    return Promise.resolve(new FatalError(`--writer kea-api: ${errorMessage(err)}`));
  }

  /** Fills the known map from reservation-get-page, so a restart's replay costs no call per device. */
  private async prime(commands: string[]): Promise<void> {
    if (!commands.includes('reservation-get-page')) return;
    const hostCache = commands.includes('cache-get');
    const unique = await this.cmds.ipReservationsUnique();
    const negativeUntil = Date.now() + (this.settings.negativeTtlMs ?? 300_000);
    for await (const page of this.cmds.allHosts()) {
      for (const h of page) {
        if (h.hwaddr === null || h.address === null || h.subnetId === 0) continue;
        const key = leaseKey({ hwaddr: h.hwaddr, subnetId: h.subnetId });
        this.known.set(
          key,
          hasMark(h)
            ? { kind: 'reserved', address: h.address, hostname: h.hostname }
            : { kind: 'foreign', address: h.address, until: negativeUntil },
        );
      }
    }
    this.addFirst = !hostCache && unique;
  }

  async write(leases: readonly Lease[]): Promise<ReservationResult[]> {
    const results: ReservationResult[] = leases.map((lease) => ({ lease, outcome: 'stale', hostId: null }));
    const confirmed = await this.confirm(leases);
    // Superseded among confirmed leases only: a forged payload for a real device's address must not
    // push that device's lease out of the batch.
    const superseded = supersededInBatch(confirmed.map(([, lease]) => lease));
    const writable = confirmed.filter(([i], k) => {
      if (!superseded.has(k)) return true;
      results[i] = { lease: leases[i], outcome: 'superseded', hostId: null };
      return false;
    });
    // All at once: the socket bounds what is in flight; each device's own calls stay in order.
    const settled = await Promise.allSettled(
      writable.map(async ([i, lease]) => {
        results[i] = { lease, outcome: await this.writeOne(lease), hostId: null };
      }),
    );
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) throw failure.reason;
    return results;
  }

  /**
   * The leases that may be written, with their index, in batch order. A NOTIFY proves nothing: a
   * database-sourced lease must be live in lease4 (address, MAC, subnet), checked before any call,
   * else it is left out (stale). Kea's own lease file (file mode) is trusted as it is.
   */
  private async confirm(leases: readonly Lease[]): Promise<[number, Lease][]> {
    const check = leases.flatMap((lease, i) => (lease.source === 'database' ? [i] : []));
    const live = new Map<number, Lease>();
    const db = this.settings.db;
    if (check.length > 0 && db) {
      let found: (Lease | null)[];
      try {
        found = await confirmLiveLeases(
          db,
          check.map((i) => leases[i]),
        );
      } catch (err) {
        throw new LeaseCheckError(err);
      }
      check.forEach((i, k) => {
        const lease = found[k];
        if (lease) live.set(i, lease);
      });
    }
    return leases.flatMap((lease, i): [number, Lease][] => {
      if (lease.source !== 'database') return [[i, lease]];
      const confirmed = live.get(i);
      return confirmed ? [[i, confirmed]] : [];
    });
  }

  classify(err: unknown): ErrorClass {
    // lease4 unreadable: the database's own classes (a missing privilege is fatal); never 'data',
    // since no lease of the batch is at fault.
    if (err instanceof LeaseCheckError) {
      const kind = classifyDbError(err.cause);
      return kind === 'data' ? 'transient' : kind;
    }
    // host_cmds unloaded by a reconfiguration: an operator must act.
    if (err instanceof KeaCommandError && err.result === KEA_UNSUPPORTED) return 'config';
    return 'transient';
  }

  private async writeOne(lease: Lease): Promise<ReservationResult['outcome']> {
    const key = leaseKey(lease);
    const k = this.known.get(key);
    if (k && k.address === lease.address) {
      if (k.kind !== 'reserved') return k.kind;
      if (lease.hostname === null || lease.hostname === k.hostname) return 'unchanged';
    }
    try {
      if (k === undefined && this.addFirst && (await this.addNew(lease, key))) return 'created';
      return await this.reserve(lease, key, false);
    } catch (err) {
      this.known.delete(key);
      if (!refusedByKea(err)) throw err;
      this.metrics.inc(...M.failed);
      this.log.error('Kea refused this reservation; skipped', {
        mac: formatMac(lease.hwaddr),
        ip: formatIPv4(lease.address),
        subnet_id: lease.subnetId,
        error: err.message,
      });
      return 'failed';
    }
  }

  private async reserve(lease: Lease, key: string, retried: boolean): Promise<ReservationResult['outcome']> {
    const negativeUntil = Date.now() + (this.settings.negativeTtlMs ?? 300_000);
    const own = await this.cmds.get(lease.hwaddr, lease.subnetId);
    if (own && !hasMark(own)) {
      this.known.set(key, { kind: 'foreign', address: lease.address, until: negativeUntil });
      return 'foreign';
    }
    const hostname = lease.hostname ?? own?.hostname ?? null;
    if (own && own.address === lease.address && own.hostname === hostname) {
      this.known.set(key, { kind: 'reserved', address: lease.address, hostname });
      return 'unchanged';
    }
    const holders = (await this.cmds.getByAddress(lease.address, lease.subnetId)).filter(
      (h) => h.hwaddr === null || !h.hwaddr.equals(lease.hwaddr),
    );
    if (holders.length > 0) {
      this.known.set(key, { kind: 'conflict', address: lease.address, until: negativeUntil });
      return 'conflict';
    }
    try {
      if (own) await this.replace(own, lease, hostname);
      else {
        await this.cmds.add({
          hwaddr: lease.hwaddr,
          subnetId: lease.subnetId,
          address: lease.address,
          hostname,
          userContext: newContext(lease),
        });
      }
    } catch (err) {
      if (!(err instanceof KeaCommandError) || err.result !== KEA_ERROR) throw err;
      // Someone else wrote between our look and our write: look again, once.
      if (DUPLICATE.test(err.text) && !retried) return this.reserve(lease, key, true);
      if (DUPLICATE.test(err.text)) {
        this.known.set(key, { kind: 'conflict', address: lease.address, until: negativeUntil });
        return 'conflict';
      }
      throw err;
    }
    this.known.set(key, { kind: 'reserved', address: lease.address, hostname });
    return own ? 'updated' : 'created';
  }

  /** reservation-add straight away; false when Kea refused it as a duplicate (then look, as usual). */
  private async addNew(lease: Lease, key: string): Promise<boolean> {
    const hostname = lease.hostname;
    try {
      await this.cmds.add({
        hwaddr: lease.hwaddr,
        subnetId: lease.subnetId,
        address: lease.address,
        hostname,
        userContext: newContext(lease),
      });
    } catch (err) {
      if (!(err instanceof KeaCommandError) || err.result !== KEA_ERROR) throw err;
      if (DUPLICATE.test(err.text)) return false;
      throw err;
    }
    this.known.set(key, { kind: 'reserved', address: lease.address, hostname });
    return true;
  }

  /** Our own host gets the lease's address and hostname; its other settings and context stay. */
  private async replace(own: KeaHost, lease: Lease, hostname: string | null): Promise<void> {
    const spec = {
      hwaddr: lease.hwaddr,
      subnetId: lease.subnetId,
      address: lease.address,
      hostname,
      userContext: own.userContext ?? {},
      extra: own.extra,
    };
    if (this.hasUpdate) return this.cmds.update(spec);
    // Kea without reservation-update: delete and add back, restoring the old host if the add fails.
    await this.cmds.del(lease.hwaddr, lease.subnetId);
    try {
      await this.cmds.add(spec);
    } catch (err) {
      if (own.address !== null) {
        await this.cmds.add({ ...spec, address: own.address, hostname: own.hostname }).catch(() => undefined);
      }
      throw err;
    }
  }
}
