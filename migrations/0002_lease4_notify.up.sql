-- NOTIFY kea_lease_events with a JSON payload when a lease4 row is inserted or meaningfully changed.
--
-- Rules, because this runs inside Kea's own lease write:
--  * It must never make that write fail: the payload is built in a separate function and any error
--    it raises is caught and turned into a WARNING (a broken builder costs events, never leases;
--    the monitor's catch-up query recovers them).
--  * Renewals (only expire/valid_lifetime/cltt change) do not fire: the UPDATE trigger's WHEN clause
--    filters them before any function runs.
--  * Names start with kea_lm_ so they never clash with Kea's lease4_ains/aupd/adel triggers.
--  * The payload stays far below NOTIFY's 8000-byte limit: hwaddr <= 20 bytes, hostname <= 255 chars.

CREATE OR REPLACE FUNCTION kea_lm_lease4_payload(
  op text, address bigint, hwaddr bytea, subnet_id bigint, state bigint,
  valid_lifetime bigint, expire timestamptz, hostname text
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
  SELECT json_build_object(
    'v', 1,
    'op', op,
    'address', address,
    'hwaddr', encode(substring(hwaddr FROM 1 FOR 20), 'hex'),
    'subnet_id', subnet_id,
    'state', state,
    'valid_lifetime', valid_lifetime,
    'expire', floor(extract(epoch FROM expire))::bigint,
    'hostname', left(hostname, 255)
  )::text
$$;

-- No SET search_path here: the builder is found in the schema Kea's own session uses for lease4.
CREATE OR REPLACE FUNCTION kea_lm_lease4_notify() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  BEGIN
    PERFORM pg_notify('kea_lease_events', kea_lm_lease4_payload(
      lower(TG_OP), NEW.address, NEW.hwaddr, NEW.subnet_id, NEW.state,
      NEW.valid_lifetime, NEW.expire, NEW.hostname));
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'kea-lease-monitor: lease4 notification skipped: % (SQLSTATE %)', SQLERRM, SQLSTATE;
  END;
  RETURN NULL;
END
$$;

-- Each trigger is (re)created only when it is missing or not the one defined here. A comment on
-- the trigger records md5(definition text below) and md5(pg_get_triggerdef) as created: a changed
-- definition in a newer build, or a trigger altered by hand, differs and is replaced (drop +
-- create); an unchanged one is left alone, so an idempotent run takes no lock on lease4.
DO $$
DECLARE
  t record;
  cur record;
BEGIN
  FOR t IN SELECT * FROM (VALUES
    ('kea_lm_lease4_notify_ins',
     $def$CREATE TRIGGER kea_lm_lease4_notify_ins
      AFTER INSERT ON lease4
      FOR EACH ROW EXECUTE FUNCTION kea_lm_lease4_notify()$def$),
    ('kea_lm_lease4_notify_upd',
     $def$CREATE TRIGGER kea_lm_lease4_notify_upd
      AFTER UPDATE ON lease4
      FOR EACH ROW
      WHEN (OLD.hwaddr IS DISTINCT FROM NEW.hwaddr
         OR OLD.client_id IS DISTINCT FROM NEW.client_id
         OR OLD.state IS DISTINCT FROM NEW.state
         OR OLD.hostname IS DISTINCT FROM NEW.hostname
         OR OLD.subnet_id IS DISTINCT FROM NEW.subnet_id)
      EXECUTE FUNCTION kea_lm_lease4_notify()$def$)
  ) AS v(name, def) LOOP
    SELECT tr.oid, obj_description(tr.oid, 'pg_trigger') AS note, md5(pg_get_triggerdef(tr.oid)) AS rendered
      INTO cur FROM pg_trigger tr WHERE tr.tgrelid = 'lease4'::regclass AND tr.tgname = t.name;
    IF FOUND AND cur.note = 'kea-lease-monitor ' || md5(t.def) || ' ' || cur.rendered THEN
      CONTINUE;
    END IF;
    IF FOUND THEN
      EXECUTE format('DROP TRIGGER %I ON lease4', t.name);
    END IF;
    EXECUTE t.def;
    SELECT md5(pg_get_triggerdef(tr.oid)) AS rendered INTO cur
      FROM pg_trigger tr WHERE tr.tgrelid = 'lease4'::regclass AND tr.tgname = t.name;
    EXECUTE format('COMMENT ON TRIGGER %I ON lease4 IS %L', t.name, 'kea-lease-monitor ' || md5(t.def) || ' ' || cur.rendered);
  END LOOP;
END
$$;
