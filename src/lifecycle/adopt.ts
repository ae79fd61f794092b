/**
 * Adopting reservations made before the ownership mark existed. Kea's hosts table keeps no
 * creation time, so the only evidence is the monitor's own discovery records: a row is adopted
 * only where a record says the monitor created it ("reservation": "created") and the row's
 * host_id, MAC, subnet and address still match that record. Anything else stays the operator's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientBase } from 'pg';
import { withWriterLock } from '../db/writer-lock';
import { formatIPv4, formatMac, InvalidLeaseError, parseHwaddr, parseIPv4 } from '../lease';
import { isOwned, MarkSource, OWNER_KEY, parseUserContext } from '../ownership';

export interface AdoptCandidate {
  host_id: number;
  mac: string;
  subnet_id: number;
  ip: string;
  /** user_context as it was, and as it will be. */
  before: string | null;
  after: string;
}

export interface AdoptPlan {
  adopt: AdoptCandidate[];
  /** Records that say "created" but whose row is gone, changed, already marked or not a JSON object. */
  skipped: Array<{ mac: string; host_id: number | null; reason: string }>;
}

interface Evidence {
  hwaddr: Buffer;
  address: number;
  subnetId: number;
  hostId: number;
  created: string;
  source: MarkSource;
}

/** Records in outputDir that say this monitor created the reservation. */
function readEvidence(outputDir: string, skipped: AdoptPlan['skipped']): Evidence[] {
  const out: Evidence[] = [];
  for (const name of readdirSync(outputDir)) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(readFileSync(join(outputDir, name), 'utf8')) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (r === null || typeof r !== 'object' || r.reservation !== 'created') continue;
    try {
      if (typeof r.mac !== 'string' || typeof r.ip !== 'string') throw new InvalidLeaseError('mac or ip missing');
      if (typeof r.host_id !== 'number' || !Number.isSafeInteger(r.host_id)) throw new InvalidLeaseError('host_id missing');
      if (typeof r.subnet_id !== 'number' || !Number.isSafeInteger(r.subnet_id)) throw new InvalidLeaseError('subnet_id missing');
      const seen = typeof r.first_seen === 'string' && !Number.isNaN(Date.parse(r.first_seen)) ? r.first_seen : new Date().toISOString();
      out.push({
        hwaddr: parseHwaddr(r.mac),
        address: parseIPv4(r.ip),
        subnetId: r.subnet_id,
        hostId: r.host_id,
        created: new Date(seen).toISOString(),
        // Records written before the source was called memfile everywhere say "file".
        source: r.source === 'database' ? 'database' : 'memfile',
      });
    } catch (err) {
      skipped.push({ mac: String(r.mac), host_id: null, reason: `record ${name} unusable: ${(err as Error).message}` });
    }
  }
  return out;
}

interface DbRow {
  host_id: number;
  dhcp_identifier: Buffer;
  dhcp_identifier_type: number;
  dhcp4_subnet_id: number | null;
  ipv4_address: number | null;
  user_context: string | null;
}

export async function planAdoption(db: ClientBase, outputDir: string, now = new Date()): Promise<AdoptPlan> {
  const skipped: AdoptPlan['skipped'] = [];
  const evidence = readEvidence(outputDir, skipped);
  const { rows } = await db.query<DbRow>(
    `SELECT host_id, dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, user_context
       FROM hosts WHERE host_id = ANY ($1::int[])`,
    [evidence.map((e) => e.hostId)],
  );
  const byId = new Map(rows.map((r) => [r.host_id, r]));
  const adopt: AdoptCandidate[] = [];
  for (const e of evidence) {
    const mac = formatMac(e.hwaddr);
    const row = byId.get(e.hostId);
    const skip = (reason: string): void => {
      skipped.push({ mac, host_id: e.hostId, reason });
    };
    if (!row) {
      skip('no row with that host_id');
      continue;
    }
    if (row.dhcp_identifier_type !== 0 || !row.dhcp_identifier.equals(e.hwaddr)) {
      skip('host_id now belongs to another identifier');
      continue;
    }
    if (Number(row.dhcp4_subnet_id) !== e.subnetId) {
      skip('subnet differs from the record');
      continue;
    }
    if (Number(row.ipv4_address) !== e.address) {
      skip('address differs from the record');
      continue;
    }
    if (isOwned(row.user_context)) {
      skip('already carries the mark');
      continue;
    }
    const ctx = parseUserContext(row.user_context);
    if (ctx === null && row.user_context !== null && row.user_context.trim() !== '') {
      skip('user_context is not a JSON object');
      continue;
    }
    if (ctx && OWNER_KEY in ctx) {
      skip('user_context has a malformed mark');
      continue;
    }
    const after = JSON.stringify({ ...(ctx ?? {}), [OWNER_KEY]: { created: e.created, source: e.source, adopted: now.toISOString() } });
    adopt.push({ host_id: e.hostId, mac, subnet_id: e.subnetId, ip: formatIPv4(e.address), before: row.user_context, after });
  }
  adopt.sort((a, b) => a.host_id - b.host_id);
  return { adopt, skipped };
}

/** Marks the planned rows, each only if it is still exactly as planned. Returns those marked. */
export async function applyAdoption(db: ClientBase, plan: AdoptPlan): Promise<AdoptCandidate[]> {
  if (plan.adopt.length === 0) return [];
  return withWriterLock(db, async () => {
    const { rows } = await db.query<{ host_id: number }>(
      `UPDATE hosts h SET user_context = t.after
         FROM unnest($1::int[], $2::bytea[], $3::bigint[], $4::bigint[], $5::text[], $6::text[]) AS t(id, mac, subnet, ip, before, after)
        WHERE h.host_id = t.id AND h.dhcp_identifier = t.mac AND h.dhcp_identifier_type = 0
          AND h.dhcp4_subnet_id = t.subnet AND h.ipv4_address = t.ip AND h.user_context IS NOT DISTINCT FROM t.before
       RETURNING h.host_id`,
      [
        plan.adopt.map((a) => a.host_id),
        plan.adopt.map((a) => parseHwaddr(a.mac)),
        plan.adopt.map((a) => a.subnet_id),
        plan.adopt.map((a) => parseIPv4(a.ip)),
        plan.adopt.map((a) => a.before),
        plan.adopt.map((a) => a.after),
      ],
    );
    const done = new Set(rows.map((r) => r.host_id));
    return plan.adopt.filter((a) => done.has(a.host_id));
  });
}
