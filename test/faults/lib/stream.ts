// Lease streams the way Kea writes them. Database mode: rows INSERTed into lease4 (each tick one
// transaction), with some clients moving to a new address (Kea DELETEs the old row, INSERTs the new).
// File mode: rows appended to a memfile CSV, renewals included, with lease-file cleanup like Kea's
// (rename to .1, new file with the header, kea-lfc merging .2 + .1 into .2).
import { closeSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { Client } from 'pg';
import { CSV_HEADER, csvRow, intToIp, ipToInt, keaLfc, macFor, macHex } from '../../helpers/leases';
import { client, Pg } from '../../e2e/lib/pg';
import { sleep } from '../../e2e/lib/proc';

export interface Lease {
  mac: string;
  ip: string;
  subnet: number;
}

const TICK_MS = 50;

/** Addresses and MACs are never reused: a lease is lost exactly when its (mac, ip) has no reservation. */
abstract class Stream {
  protected next = 0;
  /** Current address per MAC: what must be reserved in the end. */
  readonly current = new Map<string, string>();
  private running: Promise<void> | null = null;
  private halt = false;
  written = 0;
  moves = 0;

  constructor(
    protected readonly base: number,
    private readonly rate: number,
    private readonly moveEvery = 20,
  ) {}

  protected newLease(mac?: string): Lease {
    const n = this.next++;
    return { mac: mac ?? macFor(this.base + n + 1), ip: intToIp(ipToInt('10.0.0.0') + this.base + n + 10), subnet: 1 };
  }

  protected abstract write(fresh: Lease[], moved: { from: string; to: Lease }[]): Promise<void>;

  start(): void {
    this.halt = false;
    this.running ??= (async () => {
      const perTick = Math.max(1, Math.round((this.rate * TICK_MS) / 1000));
      while (!this.halt) {
        const t0 = Date.now();
        const fresh: Lease[] = [];
        const moved: { from: string; to: Lease }[] = [];
        for (let i = 0; i < perTick; i++) {
          if (this.current.size > 10 && (this.written + i) % this.moveEvery === 0) {
            const macs = [...this.current.keys()];
            const mac = macs[Math.floor(Math.random() * macs.length)];
            if (!moved.some((m) => m.to.mac === mac) && !fresh.some((f) => f.mac === mac))
              moved.push({ from: this.current.get(mac)!, to: this.newLease(mac) });
          } else fresh.push(this.newLease());
        }
        await this.write(fresh, moved);
        for (const l of fresh) this.current.set(l.mac, l.ip);
        for (const m of moved) this.current.set(m.to.mac, m.to.ip);
        this.written += fresh.length + moved.length;
        this.moves += moved.length;
        await sleep(Math.max(0, TICK_MS - (Date.now() - t0)));
      }
    })();
  }

  async stop(): Promise<void> {
    this.halt = true;
    await this.running;
    this.running = null;
  }

  expected(): Lease[] {
    return [...this.current].map(([mac, ip]) => ({ mac, ip, subnet: 1 }));
  }
}

/** INSERTs into lease4 over the unix socket; retries a tick's transaction until PostgreSQL takes it (as Kea would keep offering). */
export class DbStream extends Stream {
  private c: Client | null = null;
  outageTicks = 0;

  constructor(
    private readonly pg: Pg,
    base: number,
    rate = 200,
  ) {
    super(base, rate);
  }

  protected async write(fresh: Lease[], moved: { from: string; to: Lease }[]): Promise<void> {
    const all = [...fresh, ...moved.map((m) => m.to)];
    for (;;) {
      try {
        if (!this.c) {
          const c = client(this.pg, 'faults-stream');
          await c.connect();
          this.c = c;
        }
        await this.c.query('BEGIN');
        if (moved.length) await this.c.query('DELETE FROM lease4 WHERE address = ANY($1::bigint[])', [moved.map((m) => ipToInt(m.from))]);
        await this.c.query(
          `INSERT INTO lease4 (address, hwaddr, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state)
           SELECT a, decode(h, 'hex'), 3600, now() + interval '1 hour', 1, false, false, 'dev-' || h, 0
             FROM unnest($1::bigint[], $2::text[]) AS t(a, h)`,
          [all.map((l) => ipToInt(l.ip)), all.map((l) => macHex(l.mac))],
        );
        await this.c.query('COMMIT');
        return;
      } catch (e) {
        const code = (e as { code?: string }).code;
        await this.c?.end().catch(() => undefined);
        this.c = null;
        // A COMMIT whose answer was lost did happen: the retry then finds its rows.
        if (code === '23505') return;
        this.outageTicks++;
        await sleep(200);
      }
    }
  }

  override async stop(): Promise<void> {
    await super.stop();
    await this.c?.end().catch(() => undefined);
    this.c = null;
  }
}

/** Appends to a memfile CSV; every `cleanupEvery` rows runs a lease-file cleanup like Kea's. */
export class FileStream extends Stream {
  private fd: number;
  private rows = 0;
  cleanups = 0;

  constructor(
    readonly file: string,
    base: number,
    rate = 200,
    private readonly cleanupEvery = 1500,
  ) {
    super(base, rate);
    this.fd = openSync(file, 'a');
    if (readFileSync(file).length === 0) writeSync(this.fd, CSV_HEADER + '\n');
  }

  protected async write(fresh: Lease[], moved: { from: string; to: Lease }[]): Promise<void> {
    for (const m of moved) {
      // The old address released (valid_lifetime 0), then the new lease.
      writeSync(this.fd, csvRow({ ip: m.from, mac: m.to.mac, validLifetime: 0, hostname: `dev-${macHex(m.to.mac)}` }));
      this.row(m.to);
    }
    for (const l of fresh) {
      this.row(l);
      if (this.rows % 3 === 0) this.row(l); // a renewal: the journal holds those too
    }
    if (this.rows >= this.cleanupEvery) await this.cleanup();
  }

  private row(l: Lease): void {
    writeSync(this.fd, csvRow({ ip: l.ip, mac: l.mac, hostname: `dev-${macHex(l.mac)}` }));
    this.rows++;
  }

  private cleaning: Promise<void> = Promise.resolve();

  /** Kea's lease file cleanup: rename to .1, a new file with the header, then kea-lfc about 100 ms later. */
  cleanup(): Promise<void> {
    this.cleaning = this.cleaning.then(() => this.doCleanup());
    return this.cleaning;
  }

  /** `n` new leases appended at once (in 64 KiB writes), as after a DHCP storm; returns their range. */
  burst(n: number): { from: number; to: number } {
    let buf = '';
    const from = this.base + this.next;
    for (let i = 0; i < n; i++) {
      const l = this.newLease();
      buf += csvRow({ ip: l.ip, mac: l.mac, hostname: `dev-${macHex(l.mac)}` });
      if (buf.length > 65536) {
        writeSync(this.fd, buf);
        buf = '';
      }
    }
    if (buf) writeSync(this.fd, buf);
    this.written += n;
    return { from, to: this.base + this.next };
  }

  private async doCleanup(): Promise<void> {
    const file = this.file;
    renameSync(file, `${file}.1`);
    const next = openSync(file, 'a');
    writeSync(next, CSV_HEADER + '\n');
    closeSync(this.fd);
    this.fd = next;
    this.rows = 0;
    this.cleanups++;
    await sleep(100);
    keaLfc(file, true);
  }

  close(): void {
    closeSync(this.fd);
  }
}
