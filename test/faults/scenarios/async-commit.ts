// Database mode commits the monitor's own transactions with synchronous_commit = off: a crash of
// PostgreSQL may lose the last of them. lease4 (Kea's, durable) still holds every lease, and the
// catch-up after the reconnect must re-derive each lost reservation and re-write its record.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { client, query } from '../../e2e/lib/pg';
import { run, sleep, waitFor } from '../../e2e/lib/proc';
import { pgStart, pgStop } from '../lib/cluster';
import { LISTENING, ScenarioSpec } from '../lib/scenario';
import { liveLeases } from '../lib/verify';

const BURST = 20_000;
// 172.20.0.0/16 and MACs 06:..: apart from every stream's 10.x addresses and 02:00 MACs.
const BURST_IP = 0xac140000;
const IN_BURST = `dhcp_identifier_type = 0 AND ipv4_address BETWEEN ${BURST_IP} AND ${BURST_IP + BURST + 10}`;
// Beyond what the crash itself takes (often nothing: the WAL writer flushes within milliseconds), this
// many of the last reservations are removed before the monitor can reconnect: what a crash a moment
// later would have lost. Their devices must come back with a new host_id, in hosts and in the record.
const TAKEN = 500;
let taken: { mac: string; ip: string; oldId: number }[] = [];

async function burstReserved(ctx: Parameters<ScenarioSpec['fault']>[0]): Promise<number> {
  return Number((await query<{ n: string }>(ctx.pg, `SELECT count(*) AS n FROM hosts WHERE ${IN_BURST}`))[0].n);
}

export const crashAfterBurst: ScenarioSpec = {
  name: 'PostgreSQL crashed (-m immediate) right after a burst, database mode (asynchronous commits)',
  mode: 'db',
  rate: 200,
  // The removed reservations come back through the catch-up, which also rewrites the burst's records
  // still missing at the reconnect: at the disk's speed.
  timeoutMs: 300_000,
  async fault(ctx) {
    // The burst as Kea commits it: one durable transaction (this cluster runs synchronous_commit = on).
    const kea = client(ctx.pg, 'faults-burst');
    await kea.connect();
    await kea.query(
      `INSERT INTO lease4 (address, hwaddr, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state)
       SELECT ${BURST_IP} + n + 10, '\\x06'::bytea || int4send(n), 3600, now() + interval '1 hour', 1, false, false, 'burst-' || n, 0
         FROM generate_series(0, ${BURST - 1}) n`,
    );
    await kea.end();
    // Right after: as soon as the monitor has committed part of the burst, and while it still writes.
    await waitFor('part of the burst reserved', async () => (await burstReserved(ctx)) >= BURST / 10, 60_000, 5);
    const [before] = await query<{ n: string; unflushed: string }>(
      ctx.pg,
      `SELECT (SELECT count(*) FROM hosts WHERE ${IN_BURST}) AS n,
              pg_wal_lsn_diff(pg_current_wal_insert_lsn(), pg_current_wal_flush_lsn()) AS unflushed`,
    );
    const opts = await pgStop(ctx.pg, 'immediate');
    // Crash recovery in a start the monitor cannot reach (no TCP, the socket elsewhere), then the real start.
    const maint = join(ctx.dir, 'maintenance');
    mkdirSync(maint, { recursive: true });
    await run('chown', ['postgres:', maint]);
    await pgStart(
      ctx.pg,
      opts
        .replace(/"-c" "listen_addresses=[^"]*"/, `"-c" "listen_addresses="`)
        .replace(/"-c" "unix_socket_directories=[^"]*"/, `"-c" "unix_socket_directories=${maint}"`),
    );
    const inMaintenance = { ...ctx.pg, host: maint };
    const after = Number((await query<{ n: string }>(inMaintenance, `SELECT count(*) AS n FROM hosts WHERE ${IN_BURST}`))[0].n);
    taken = (
      await query<{ mac: string; ip: string; host_id: number }>(
        inMaintenance,
        `DELETE FROM hosts WHERE host_id IN (SELECT host_id FROM hosts WHERE ${IN_BURST} ORDER BY host_id DESC LIMIT ${TAKEN})
         RETURNING encode(dhcp_identifier, 'hex') AS mac, host('0.0.0.0'::inet + ipv4_address) AS ip, host_id`,
      )
    ).map((r) => ({ mac: r.mac, ip: r.ip, oldId: r.host_id }));
    await pgStop(ctx.pg, 'fast');
    await sleep(500);
    await pgStart(ctx.pg, opts);
    const lost = Math.max(0, Number(before.n) - after);
    ctx.notes.push(
      `at the crash ${before.n} of the burst reserved and ${before.unflushed} bytes of WAL not yet flushed; ` +
        `${after} survived the restart (${lost} acknowledged commits lost), and ${taken.length} more were removed before the reconnect`,
    );
    await ctx.mon.waitLog(LISTENING, 30_000).catch(() => undefined);
    return { end: Date.now(), tailMs: 2000 };
  },
  async after(ctx) {
    // Every live lease, the burst's and the stream's, has its record naming its address.
    const expected = await liveLeases(ctx.pg);
    let missing: string[] = [];
    await waitFor(
      'discovery records',
      () => {
        missing = expected
          .filter((l) => {
            const f = join(ctx.outputDir, `${l.mac.match(/../g)!.join('-')}.json`);
            return !existsSync(f) || !readFileSync(f, 'utf8').includes(`"${l.ip}"`);
          })
          .map((l) => l.mac);
        return missing.length === 0;
      },
      60_000,
      500,
    ).catch(() => undefined);
    // The removed reservations are back, with a new host_id, and their records name it.
    const now = new Map(
      (
        await query<{ mac: string; host_id: number }>(
          ctx.pg,
          `SELECT encode(dhcp_identifier, 'hex') AS mac, host_id FROM hosts WHERE dhcp_identifier = ANY ($1::bytea[]) AND dhcp_identifier_type = 0`,
          [taken.map((t) => Buffer.from(t.mac, 'hex'))],
        )
      ).map((r) => [r.mac, r.host_id]),
    );
    const notBack = taken.filter((t) => {
      const id = now.get(t.mac);
      if (id === undefined || id === t.oldId) return true;
      const f = join(ctx.outputDir, `${t.mac.match(/../g)!.join('-')}.json`);
      const record = existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { host_id?: number }) : {};
      return record.host_id !== id;
    });
    return [
      {
        ok: taken.length === TAKEN && notBack.length === 0,
        what: `${taken.length - notBack.length} of ${taken.length} removed reservations re-derived with their records`,
      },
      { ok: expected.length >= BURST, what: `${expected.length} live leases` },
      {
        ok: missing.length === 0,
        what: `${missing.length} discovery records missing or stale${missing.length ? ` (${missing.slice(0, 2).join(', ')})` : ''}`,
      },
    ];
  },
};
