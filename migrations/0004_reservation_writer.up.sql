-- The functions the monitor's reservation write uses (the ownership mark, the HA fence); the write
-- itself, one call per batch with bound parameters, is migration 0005. SECURITY INVOKER: they run
-- with the caller's privileges.
--
-- No literal below contains a backslash: PL/pgSQL parses the bodies in the caller's session, where
-- standard_conforming_strings may be off.

-- The ownership mark: user_context is a JSON object whose "kea-lease-monitor" member is an object
-- with "created" (ISO-8601, as src/ownership.ts CREATED_PATTERN) and "source" memfile|database.
-- The same rule as readMark in src/ownership.ts. Text that is not valid JSON is not ours: the cast
-- is guarded, so one bad row can never fail a statement.
-- The guarded cast, for text that starts like an object but is not the monitor's own exact form.
-- Not PARALLEL SAFE: the exception block opens a subtransaction.
CREATE OR REPLACE FUNCTION kea_lm_owned_cast(user_context text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
SECURITY INVOKER
AS $fn$
DECLARE
  mark jsonb;
BEGIN
  BEGIN
    mark := user_context::jsonb -> 'kea-lease-monitor';
  EXCEPTION WHEN data_exception THEN
    RETURN false;
  END;
  RETURN COALESCE(jsonb_typeof(mark) = 'object'
    AND jsonb_typeof(mark -> 'created') = 'string'
    AND (mark ->> 'created') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})$'
    AND (mark ->> 'source') IN ('memfile', 'database'), false);
END
$fn$;

-- A plain SQL expression, so the planner inlines it: the exact text the monitor writes for a new row
-- is decided by a pattern alone, text that does not start like a JSON object ("{" after JSON
-- whitespace, a subset of [[:space:]]) is never cast, and only the rest pays for the guarded cast.
CREATE OR REPLACE FUNCTION kea_lm_owned(user_context text) RETURNS boolean
LANGUAGE sql IMMUTABLE
SECURITY INVOKER
AS $fn$
  SELECT CASE
    WHEN user_context IS NULL THEN false
    WHEN user_context ~ '^[{]"kea-lease-monitor":[{]"created":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})","source":"(memfile|database)"[}][}]$' THEN true
    WHEN user_context !~ '^[[:space:]]*[{]' THEN false
    ELSE kea_lm_owned_cast(user_context) END
$fn$;

-- The HA fence: true while the session that took the HA lock still holds it. A session is named by
-- its pid and its backend_start (microseconds since the epoch): a pid alone can be reused by a
-- later session, even one of the other monitor's.
-- Parameters named p_*: in a SQL function a column name wins (pg_stat_activity has a leader_pid).
CREATE OR REPLACE FUNCTION kea_lm_fence_held(p_class int, p_key int, p_pid int, p_start bigint)
RETURNS boolean
LANGUAGE sql STABLE
SECURITY INVOKER
AS $fn$
  SELECT EXISTS (
    SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.classid = p_class::oid AND l.objid = p_key::oid AND l.objsubid = 2
       AND l.granted AND l.pid = p_pid
       AND (extract(epoch FROM a.backend_start) * 1000000)::bigint = p_start)
$fn$;
