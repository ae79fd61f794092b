/**
 * How the writer (and catch-up) treats a failed write, whatever the backend: the classes, and
 * for PostgreSQL the SQLSTATEs that map to each (db/errors.ts; docs/db-reliability.md):
 * - fatal: only what is certainly configuration and will not change by waiting: 42501
 *   insufficient_privilege, 42P01 undefined_table, 42703 undefined_column, 3D000 database missing,
 *   28P01 wrong password and 28000 refused by pg_hba/no such role. PostgreSQL answers 57P03, never
 *   28xxx, while it starts up or recovers, so an authentication refusal is a statement about
 *   credentials; the unit's Restart= (with a start limit) still gives a rotated password its chance.
 *   The process stops with exit code 1 and one line naming the fix.
 * - read-only: 25006, a standby or a read-only default: move on to the next host of the list.
 * - transient: no SQLSTATE (refused, reset, timeouts, DNS), 08 connection, 53 resources,
 *   57 operator intervention (incl. 57014 statement_timeout), 40 rollbacks, 55 lock_not_available
 *   (lock_timeout), 58 system, XX internal, and 0A000 "cached plan must not change result type" (the
 *   write's prepared statement after `db migrate` changed the function): retry the same batch on a fresh connection, with backoff.
 * - data: 22/23, PostgreSQL refuses these rows; retrying fails again, so the bad lease is isolated.
 * - config: anything else (42P10 missing arbiter, an unexpected 42xxx): retry slowly, logged.
 */
export type ErrorClass = 'transient' | 'data' | 'config' | 'read-only' | 'fatal';
