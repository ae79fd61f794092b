-- Removes the lease4 NOTIFY triggers and their functions; Kea's own triggers are untouched.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'lease4'::regclass AND tgname = 'kea_lm_lease4_notify_ins') THEN
    DROP TRIGGER kea_lm_lease4_notify_ins ON lease4;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'lease4'::regclass AND tgname = 'kea_lm_lease4_notify_upd') THEN
    DROP TRIGGER kea_lm_lease4_notify_upd ON lease4;
  END IF;
END
$$;
DROP FUNCTION IF EXISTS kea_lm_lease4_notify();
DROP FUNCTION IF EXISTS kea_lm_lease4_payload(text, bigint, bytea, bigint, bigint, bigint, timestamptz, text);
