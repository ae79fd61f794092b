-- Which version of kea-lease-monitor's migrations this database carries (the highest migration
-- number of the build that last ran `db migrate`; the build writes the row after this file).
-- `run` and `db status` compare it with their own: newer refuses, older warns. One row at most.
CREATE TABLE IF NOT EXISTS kea_lm_schema (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  migrations integer NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
-- The monitor's runtime role may be narrower than the one that migrates: anyone may read a version number.
GRANT SELECT ON kea_lm_schema TO PUBLIC;
