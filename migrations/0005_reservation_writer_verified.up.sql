-- The reservation write (src/db/reservations.ts), replacing 0004's first version: a lease is
-- superseded only by a later one that is itself live (a forged payload for a real device's address
-- can no longer push the real lease out of its batch), and each row returns lease4's own hostname,
-- which the discovery record carries instead of the payload's.
-- The return type changed, which CREATE OR REPLACE cannot do: the first version is dropped, and only
-- that one (its result has no lease4_hostname), so a rerun changes nothing.
DO $do$
DECLARE
  earlier CONSTANT regprocedure := to_regprocedure('kea_lm_write_reservations(text, boolean, int, int, int, bigint, bytea[], bigint[], bigint[], bytea[], int[], boolean[], int, bytea, bytea)');
BEGIN
  IF earlier IS NOT NULL AND strpos(pg_get_function_result(earlier), 'lease4_hostname') = 0 THEN
    EXECUTE 'DROP FUNCTION ' || earlier::text;
  END IF;
END
$do$;

-- One batch of reservations. Rows: one per input lease, by idx.
--   p_mode: upsert (an arbiter exists: INSERT ... ON CONFLICT), insert (none: check-then-write, made
--           safe by the writers' lock), classify (decide only, write nothing, take no lock).
--   p_durable: false sets synchronous_commit = off for this transaction only (database mode, where
--           lease4 stays durable and every reconnect re-derives the reservations from it).
--   p_fence_*: the HA leader's lock and session; NULL pid: no fence. A closed fence raises KLM01.
--   p_hostname, p_context_*: text as its UTF-8 bytes. bytea travels as hex, pure ASCII, so no
--           client_encoding can reinterpret a byte of it (a 0x5C trail byte, an escaping quote).
--   p_context_memfile, p_context_database: user_context of a new row, by the lease's source (a
--           database-sourced lease is the one checked against lease4).
-- Every row is decided under the writers' lock (4934734, WRITER_LOCK in src/db/reservations.ts):
-- its own reservation (same identifier and subnet) and whether the monitor owns it, any other host
-- holding the address in that subnet, the per-subnet cap, and for database-sourced leases whether
-- lease4 really holds that lease (a NOTIFY payload is only a hint), then whether a later live lease
-- in the batch took the same address (superseded). Only create and update reach
-- the write, so renewals and the monitor's own echoes never draw a host_id from the sequence.
-- No SET search_path: hosts and lease4 are found where the caller's session finds them.
CREATE OR REPLACE FUNCTION kea_lm_write_reservations(
  p_mode text, p_durable boolean,
  p_fence_class int, p_fence_key int, p_fence_pid int, p_fence_start bigint,
  p_mac bytea[], p_subnet_id bigint[], p_ip bigint[], p_hostname bytea[], p_idx int[], p_check_live boolean[],
  p_max_per_subnet int, p_context_memfile bytea, p_context_database bytea
) RETURNS TABLE (idx int, action text, own_id int, holder_id int, host_id int, inserted boolean, lease4_hostname text)
LANGUAGE plpgsql
SECURITY INVOKER
-- A generic plan cannot see how many rows the arrays hold; measured, it costs seconds per batch of
-- 1,000 where a custom plan costs a few milliseconds. Only these settings are scoped to the function:
-- synchronous_commit below still lasts to the end of the transaction.
SET plan_cache_mode = force_custom_plan
SET enable_seqscan = on
AS $fn$
#variable_conflict use_column
DECLARE
  live_ok boolean[];
  live_hostname text[];
  -- Control characters, as src/lease.ts sanitizeHostname strips them.
  controls CONSTANT text := '[' || chr(1) || '-' || chr(31) || chr(127) || '-' || chr(159) || chr(8232) || chr(8233) || ']';
  d_idx int[]; d_action text[]; d_own int[]; d_holder int[];
  d_mac bytea[]; d_subnet bigint[]; d_ip bigint[]; d_hostname text[]; d_context text[]; d_live_hostname text[];
  context_memfile CONSTANT text := convert_from(p_context_memfile, 'UTF8');
  context_database CONSTANT text := convert_from(p_context_database, 'UTF8');
BEGIN
  -- A small batch (the steady trickle) reuses the session's generic plans: planning the three
  -- statements again costs about 0.8 ms a call, more than running them. Without sequential scans
  -- those plans stay index lookups however much lease4 and hosts grow after they were made.
  IF cardinality(p_mac) <= 16 THEN
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    PERFORM set_config('enable_seqscan', 'off', true);
  END IF;
  IF p_mode IS NULL OR p_mode NOT IN ('upsert', 'insert', 'classify') THEN
    RAISE EXCEPTION 'kea_lm_write_reservations: unknown mode %', p_mode USING ERRCODE = '22023';
  END IF;
  IF p_mode <> 'classify' THEN
    PERFORM pg_advisory_xact_lock(4934734);
    -- After the lock: no other monitor can write between this check and our commit.
    IF p_fence_pid IS NOT NULL AND NOT kea_lm_fence_held(p_fence_class, p_fence_key, p_fence_pid, p_fence_start) THEN
      RAISE EXCEPTION 'kea-lease-monitor: not the active monitor (the HA lock is not held by our session)'
        USING ERRCODE = 'KLM01';
    END IF;
    IF NOT p_durable THEN
      PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
  END IF;

  -- lease4 is read only when a lease came from it: in file mode it need not exist.
  IF true = ANY (p_check_live) THEN
    SELECT array_agg(lv.ok ORDER BY t.ord), array_agg(lv.hostname ORDER BY t.ord) INTO live_ok, live_hostname
      FROM unnest(p_mac, p_subnet_id, p_ip, p_check_live) WITH ORDINALITY AS t(mac, subnet_id, ip, check_live, ord)
      LEFT JOIN LATERAL (
        SELECT true AS ok, l.hostname FROM lease4 l
         WHERE t.check_live AND l.address = t.ip AND l.hwaddr = t.mac AND l.subnet_id + 0 = t.subnet_id
           AND l.state + 0 = 0 AND l.expire > now() AND l.valid_lifetime > 0
         LIMIT 1) lv ON true;
  END IF;

  -- Each "+ 0" leaves a lookup one index to choose (lease4's primary key, hosts' identifier and
  -- address keys): a plan made while the tables were empty or never analysed (right after a burst, or
  -- a small batch's generic plan) otherwise picks fk_host_identifier_type (every row has type 0),
  -- lease4_by_subnet_id or lease4_by_state_expire, and scans a whole subnet per lease. The cap counts the monitor's rows per subnet and ranks this
  -- batch's new devices after them, so a burst cannot overshoot it.
  WITH input AS (
    SELECT t.mac, t.subnet_id, t.ip, convert_from(t.raw_hostname, 'UTF8') AS raw_hostname, t.idx, t.check_live,
           CASE WHEN t.check_live THEN context_database ELSE context_memfile END AS ctx, t.lv_ok, t.lv_hostname
      FROM unnest(p_mac, p_subnet_id, p_ip, p_hostname, p_idx, p_check_live, live_ok, live_hostname)
        AS t(mac, subnet_id, ip, raw_hostname, idx, check_live, lv_ok, lv_hostname)
  ),
  classified AS (
    SELECT i.*, own.host_id AS own_id, own.ipv4_address AS own_ip, own.hostname AS own_hostname, own.owned,
           holder.host_id AS holder_id, COALESCE(i.lv_ok, false) AS live_ok,
           -- A payload's hostname counts only when lease4 has the same one (no forged renames),
           -- compared after the sanitising of src/lease.ts (control characters, trim, 255 bytes).
           CASE WHEN NOT i.check_live OR i.lv_hostname = i.raw_hostname OR cl.clean = i.raw_hostname
                  OR (octet_length(i.raw_hostname) > 251 AND starts_with(cl.clean, i.raw_hostname))
                THEN i.raw_hostname END AS hostname
      FROM input i
      CROSS JOIN LATERAL (SELECT btrim(regexp_replace(i.lv_hostname, controls, '', 'g')) AS clean) cl
      LEFT JOIN LATERAL (
        SELECT h.host_id, h.ipv4_address, h.hostname, kea_lm_owned(h.user_context) AS owned FROM hosts h
         WHERE h.dhcp_identifier = i.mac AND h.dhcp_identifier_type + 0 = 0 AND h.dhcp4_subnet_id = i.subnet_id
         LIMIT 1) own ON true
      LEFT JOIN LATERAL (
        SELECT h.host_id FROM hosts h
         WHERE h.ipv4_address = i.ip AND h.dhcp4_subnet_id + 0 = i.subnet_id
           AND NOT (h.dhcp_identifier = i.mac AND h.dhcp_identifier_type = 0)
         LIMIT 1) holder ON true
  ),
  first_pass AS (
    SELECT c.*, CASE
        WHEN c.check_live AND NOT c.live_ok THEN 'stale'
        -- The newest live lease for an address wins: Kea gave it to the later device.
        WHEN c.idx < max(c.idx) FILTER (WHERE NOT c.check_live OR c.live_ok) OVER (PARTITION BY c.subnet_id, c.ip) THEN 'superseded'
        WHEN c.own_id IS NOT NULL AND NOT c.owned THEN 'foreign'
        WHEN c.holder_id IS NOT NULL THEN 'conflict'
        WHEN c.own_id IS NULL THEN 'create'
        WHEN c.own_ip IS DISTINCT FROM c.ip OR (c.hostname IS NOT NULL AND c.own_hostname IS DISTINCT FROM c.hostname) THEN 'update'
        ELSE 'unchanged' END AS pre_action
      FROM classified c
  ),
  own_counts AS (
    SELECT h.dhcp4_subnet_id AS subnet_id, count(*) AS n FROM hosts h
     WHERE p_max_per_subnet IS NOT NULL
       AND h.dhcp4_subnet_id IN (SELECT f.subnet_id FROM first_pass f WHERE f.pre_action = 'create')
       AND kea_lm_owned(h.user_context)
     GROUP BY h.dhcp4_subnet_id
  ),
  decided AS (
    SELECT f.*, CASE
        WHEN f.pre_action = 'create' AND p_max_per_subnet IS NOT NULL
         AND COALESCE(oc.n, 0) + row_number() OVER (PARTITION BY f.subnet_id, f.pre_action ORDER BY f.idx) > p_max_per_subnet
        THEN 'limit' ELSE f.pre_action END AS action
      FROM first_pass f LEFT JOIN own_counts oc ON oc.subnet_id = f.subnet_id
  )
  SELECT array_agg(d.idx), array_agg(d.action), array_agg(d.own_id), array_agg(d.holder_id),
         array_agg(d.mac), array_agg(d.subnet_id), array_agg(d.ip), array_agg(d.hostname), array_agg(d.ctx),
         array_agg(d.lv_hostname)
    INTO d_idx, d_action, d_own, d_holder, d_mac, d_subnet, d_ip, d_hostname, d_context, d_live_hostname
    FROM decided d;

  -- The write's plan is the same at any size (a hash join with what it wrote); a custom plan would
  -- copy every array into itself first: measured 1.06 s against 0.71 s for 50,000 leases.
  PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);

  IF p_mode = 'classify' THEN
    RETURN QUERY SELECT d.idx, d.action, d.own_id, d.holder_id, NULL::int, NULL::boolean, d.live_hostname
      FROM unnest(d_idx, d_action, d_own, d_holder, d_live_hostname) AS d(idx, action, own_id, holder_id, live_hostname);
  ELSIF p_mode = 'upsert' THEN
    -- The WHERE of ON CONFLICT lets PostgreSQL infer Kea's partial index (WHERE dhcp4_subnet_id IS
    -- NOT NULL), the older "... AND <> 0" one, or a plain constraint. DO UPDATE touches only rows
    -- carrying the mark, so an operator's row that appeared since the check is still left alone.
    RETURN QUERY
    WITH d AS (
      SELECT * FROM unnest(d_idx, d_action, d_own, d_holder, d_mac, d_subnet, d_ip, d_hostname, d_context, d_live_hostname)
        AS t(idx, action, own_id, holder_id, mac, subnet_id, ip, hostname, ctx, live_hostname)
    ),
    written AS (
      INSERT INTO hosts AS hs (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
      SELECT d.mac, 0, d.subnet_id, d.ip, d.hostname, d.ctx FROM d WHERE d.action IN ('create', 'update') ORDER BY d.idx
      ON CONFLICT (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id)
        WHERE dhcp4_subnet_id IS NOT NULL AND dhcp4_subnet_id <> 0
      DO UPDATE SET ipv4_address = EXCLUDED.ipv4_address,
                    hostname = COALESCE(EXCLUDED.hostname, hs.hostname)
        WHERE kea_lm_owned(hs.user_context)
          AND (hs.ipv4_address IS DISTINCT FROM EXCLUDED.ipv4_address
               OR (EXCLUDED.hostname IS NOT NULL AND hs.hostname IS DISTINCT FROM EXCLUDED.hostname))
      RETURNING hs.host_id, hs.dhcp_identifier, hs.dhcp4_subnet_id, (hs.xmax = 0) AS inserted
    )
    SELECT d.idx, d.action, d.own_id, d.holder_id, w.host_id, w.inserted, d.live_hostname
      FROM d LEFT JOIN written w ON w.dhcp_identifier = d.mac AND w.dhcp4_subnet_id = d.subnet_id;
  ELSE
    RETURN QUERY
    WITH d AS (
      SELECT * FROM unnest(d_idx, d_action, d_own, d_holder, d_mac, d_subnet, d_ip, d_hostname, d_context, d_live_hostname)
        AS t(idx, action, own_id, holder_id, mac, subnet_id, ip, hostname, ctx, live_hostname)
    ),
    ins AS (
      INSERT INTO hosts AS hs (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
      SELECT d.mac, 0, d.subnet_id, d.ip, d.hostname, d.ctx FROM d WHERE d.action = 'create' ORDER BY d.idx
      RETURNING hs.host_id, hs.dhcp_identifier, hs.dhcp4_subnet_id
    ),
    upd AS (
      UPDATE hosts h SET ipv4_address = d.ip, hostname = COALESCE(d.hostname, h.hostname)
        FROM d WHERE d.action = 'update' AND h.host_id = d.own_id AND kea_lm_owned(h.user_context)
      RETURNING h.host_id
    )
    SELECT d.idx, d.action, d.own_id, d.holder_id, COALESCE(ins.host_id, upd.host_id), ins.host_id IS NOT NULL, d.live_hostname
      FROM d
      LEFT JOIN ins ON ins.dhcp_identifier = d.mac AND ins.dhcp4_subnet_id = d.subnet_id
      LEFT JOIN upd ON upd.host_id = d.own_id;
  END IF;
END
$fn$;
