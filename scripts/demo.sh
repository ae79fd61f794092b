#!/usr/bin/env bash
# The main job on an embedded default: a throwaway PostgreSQL with the real Kea schema, the NOTIFY
# migration, the monitor in database mode, and leases written the way Kea writes them. Everything
# it starts is stopped again on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/dist/kea-lease-monitor
work=$(mktemp -d /tmp/klm-demo-XXXXXX)
pg=$(mktemp -d /tmp/klm-demo-pg-XXXXXX)  # its own directory: the postgres user must be able to enter it
monitor_pid=
cleanup() {
  [[ -n "$monitor_pid" ]] && kill "$monitor_pid" 2>/dev/null && wait "$monitor_pid" 2>/dev/null || true
  scripts/pg-throwaway.sh stop "$pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Throwaway PostgreSQL 15 with Kea's schema (kea-admin db-init pgsql)"
settings=$(scripts/pg-throwaway.sh start "$pg")
eval "$settings"
export KEA_LM_DB_HOST=$PGHOST KEA_LM_DB_PORT=$PGPORT KEA_LM_DB_USER=$PGUSER KEA_LM_DB_NAME=$PGDATABASE
psql() { command psql -X -q -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" "$@"; }

step "kea-lease-monitor db migrate --notify (twice: the second run changes nothing)"
"$BIN" db migrate --notify --json
"$BIN" db migrate --notify --json
"$BIN" db status

step "Monitor in database mode (--use-database-events)"
"$BIN" --use-database-events --output-dir "$work/discovery" --metrics-port 9548 &
monitor_pid=$!
for _ in $(seq 50); do [[ -d "$work/discovery" ]] && curl -sf http://127.0.0.1:9548/metrics >/dev/null 2>&1 && break; sleep 0.1; done

step "Kea-style lease writes: three new clients, a renewal, a hostile hostname"
psql <<'SQL'
INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state)
VALUES (('192.0.2.10'::inet - '0.0.0.0'::inet), '\x0cc47a000001', NULL, 3600, now() + interval '1 hour', 1, false, false, 'bmc-rack1-u01', 0),
       (('192.0.2.11'::inet - '0.0.0.0'::inet), '\x0cc47a000002', NULL, 3600, now() + interval '1 hour', 1, false, false, 'bmc-rack1-u02', 0),
       (('192.0.2.12'::inet - '0.0.0.0'::inet), '\x0cc47a000003', NULL, 3600, now() + interval '1 hour', 1, false, false,
        E'x''); DROP TABLE hosts;--/../../etc\u0007', 0);
UPDATE lease4 SET expire = now() + interval '2 hours' WHERE address = ('192.0.2.10'::inet - '0.0.0.0'::inet);
SQL
sleep 1

step "Reservations in Kea's hosts table"
psql -c "SELECT host_id, encode(dhcp_identifier, 'hex') AS mac, dhcp4_subnet_id AS subnet,
                '0.0.0.0'::inet + ipv4_address AS ip, hostname FROM hosts ORDER BY host_id"

step "Discovery records in $work/discovery"
ls -l "$work/discovery"
cat "$work/discovery/0c-c4-7a-00-00-01.json"

step "Prometheus metrics"
curl -s http://127.0.0.1:9548/metrics | grep -E '^kea_lease_monitor_(reservations|leases_received)_total\{.*\} [1-9]' || true
curl -s http://127.0.0.1:9548/readyz

step "SIGTERM: graceful stop"
kill -TERM "$monitor_pid"; wait "$monitor_pid"; echo "exit code $?"; monitor_pid=
