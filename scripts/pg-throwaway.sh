#!/usr/bin/env bash
# Throwaway PostgreSQL 15 cluster holding the real Kea schema, for tests, demos and benchmarks.
#   pg-throwaway.sh start DIR [PORT]  initdb + start + `kea-admin db-init pgsql` into database "kea";
#                                     prints shell lines: PGHOST=DIR PGPORT=PORT PGUSER=postgres PGDATABASE=kea
#                                     KEA_SCHEMA_FILE=FILE loads that dhcpdb_create.pgsql instead (another Kea
#                                     release's schema, see scripts/kea-schemas.sh)
#   pg-throwaway.sh load DIR DB FILE  create database DB holding the Kea schema of FILE (a running cluster)
#   pg-throwaway.sh restart DIR       fast restart (same port and settings), for outage tests
#   pg-throwaway.sh stop DIR          stop the cluster and remove DIR
# Listens on 127.0.0.1:PORT (scram) and on a unix socket in DIR (trust). PG_DURABLE=1 keeps fsync on (benchmarks).
set -euo pipefail
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}; dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2; }

as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# What kea-admin db-init does, from any release's dhcpdb_create.pgsql.
load_schema() { # DIR PORT DB FILE
  [[ -r "$4" ]] || { echo "pg-throwaway: cannot read schema file $4" >&2; exit 1; }
  as_pg "$PGBIN/psql" -h "$1" -p "$2" -U postgres -d postgres -qAtc "CREATE DATABASE \"$3\"" >/dev/null
  as_pg "$PGBIN/psql" -h "$1" -p "$2" -U postgres -d "$3" -q -v ON_ERROR_STOP=1 -f - <"$4" >"$1/schema-$3.log" 2>&1 \
    || { cat "$1/schema-$3.log" >&2; exit 1; }
}

case "$cmd" in
load)
  db=${3:?usage: $0 load DIR DB FILE}; file=${4:?usage: $0 load DIR DB FILE}
  port=$(sed -n 4p "$dir/data/postmaster.pid" 2>/dev/null) || true
  [[ -n "$port" ]] || { echo "pg-throwaway: no running cluster in $dir" >&2; exit 1; }
  load_schema "$dir" "$port" "$db" "$file"
  ;;
start)
  [[ -x "$PGBIN/initdb" ]] || { echo "pg-throwaway: $PGBIN/initdb missing: apt-get install -y postgresql-15" >&2; exit 1; }
  [[ -n "${KEA_SCHEMA_FILE:-}" ]] || command -v kea-admin >/dev/null \
    || { echo "pg-throwaway: kea-admin missing: apt-get install -y kea-admin" >&2; exit 1; }
  port=${3:-$(free_port)}
  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$dir"
    runuser -u postgres -- test -x "$dir" \
      || { echo "pg-throwaway: the postgres user cannot enter $dir (a parent directory is private); use a directory of its own, e.g. mktemp -d" >&2; exit 1; }
  fi
  as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
HBA
  durable=()
  [[ "${PG_DURABLE:-0}" == 1 ]] || durable=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200 ${durable[*]}" \
    start >/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
  if [[ -n "${KEA_SCHEMA_FILE:-}" ]]; then
    load_schema "$dir" "$port" kea "$KEA_SCHEMA_FILE"
  else
    as_pg "$PGBIN/psql" -h "$dir" -p "$port" -U postgres -d postgres -qAtc "CREATE DATABASE kea" >/dev/null
    # kea-admin only passes the password through PGPASSWORD; trust on the socket ignores it.
    kea-admin db-init pgsql -h "$dir" -P "$port" -u postgres -p unused -n kea >"$dir/kea-admin.log" 2>&1 \
      || { cat "$dir/kea-admin.log" >&2; exit 1; }
  fi
  echo "PGHOST=$dir"; echo "PGPORT=$port"; echo "PGUSER=postgres"; echo "PGDATABASE=kea"
  ;;
restart)
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -m fast -w -t 30 restart >/dev/null
  ;;
stop)
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start|load|restart|stop DIR ..." >&2; exit 2 ;;
esac
