import type { ClientBase } from 'pg';

export const NOTIFY_CHANNEL = 'kea_lease_events';
export const NOTIFY_TRIGGERS = ['kea_lm_lease4_notify_ins', 'kea_lm_lease4_notify_upd'] as const;
export const PROJECT_CONSTRAINT = 'hosts_dhcp_identifier_subnet_unique';

export interface Arbiter {
  /** kea-index: Kea's own unique index; constraint: the one migration 0001 added; none: fallback path. */
  kind: 'kea-index' | 'constraint' | 'none';
  name: string | null;
  predicate: string | null;
}

export interface SchemaState {
  arbiter: Arbiter;
  notifyTrigger: boolean;
  notifyFunctions: boolean;
}

// Predicates our ON CONFLICT clause (WHERE dhcp4_subnet_id IS NOT NULL AND dhcp4_subnet_id <> 0) implies.
const USABLE_PREDICATES = new Set([
  null,
  '(dhcp4_subnet_id IS NOT NULL)',
  '((dhcp4_subnet_id IS NOT NULL) AND (dhcp4_subnet_id <> 0))',
  '(dhcp4_subnet_id <> 0)',
]);

/** A unique index on exactly (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id) that the upsert can infer. */
export async function findArbiter(db: ClientBase): Promise<Arbiter> {
  const { rows } = await db.query<{ name: string; predicate: string | null; is_constraint: boolean }>(`
    SELECT c.relname AS name, pg_get_expr(i.indpred, i.indrelid) AS predicate,
           EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) AS is_constraint
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = 'hosts'::regclass AND i.indisunique AND i.indisvalid AND i.indexprs IS NULL
       AND i.indnkeyatts = 3
       AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
             WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[]))
           = ARRAY['dhcp4_subnet_id', 'dhcp_identifier', 'dhcp_identifier_type']
     ORDER BY (i.indpred IS NULL), c.relname`);
  const usable = rows.find((r) => USABLE_PREDICATES.has(r.predicate));
  if (!usable) return { kind: 'none', name: null, predicate: null };
  return {
    kind: usable.name === PROJECT_CONSTRAINT || usable.is_constraint ? 'constraint' : 'kea-index',
    name: usable.name,
    predicate: usable.predicate,
  };
}

export async function readSchemaState(db: ClientBase): Promise<SchemaState> {
  const arbiter = await findArbiter(db);
  const { rows } = await db.query<{ triggers: number; functions: number }>(
    `SELECT (SELECT count(*)::int FROM pg_trigger
              WHERE tgrelid = 'lease4'::regclass AND tgname = ANY ($1) AND tgenabled <> 'D') AS triggers,
            (SELECT count(*)::int FROM pg_proc
              WHERE proname IN ('kea_lm_lease4_notify', 'kea_lm_lease4_payload')) AS functions`,
    [NOTIFY_TRIGGERS],
  );
  return {
    arbiter,
    notifyTrigger: rows[0].triggers === NOTIFY_TRIGGERS.length,
    notifyFunctions: rows[0].functions === 2,
  };
}

/**
 * A text fingerprint of every catalog object the migrations may touch. No backslash in any literal
 * (chr(10), starts_with): the text means the same under standard_conforming_strings = off. Equal before and after a
 * migration means it changed nothing, which is how `db migrate --json` reports "changed".
 */
export async function catalogFingerprint(db: ClientBase): Promise<string> {
  const { rows } = await db.query<{ fp: string }>(`
    SELECT coalesce(string_agg(x, chr(10) ORDER BY x), '') AS fp FROM (
      SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
       WHERE conrelid = 'hosts'::regclass
      UNION ALL
      SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'hosts'::regclass
      UNION ALL
      SELECT 'trigger ' || pg_get_triggerdef(oid) || ' ' || tgenabled::text || ' '
             || coalesce(obj_description(oid, 'pg_trigger'), '') FROM pg_trigger
       WHERE tgrelid = 'lease4'::regclass AND NOT tgisinternal
      UNION ALL
      SELECT 'table ' || c.oid::regclass::text FROM pg_class c
       WHERE starts_with(c.relname::text, 'kea_lm_') AND c.relkind = 'r'
      UNION ALL
      SELECT 'function ' || p.oid::regprocedure::text || ' ' || md5(pg_get_functiondef(p.oid)) FROM pg_proc p
       WHERE starts_with(p.proname::text, 'kea_lm_')
    ) s(x)`);
  return rows[0].fp;
}
