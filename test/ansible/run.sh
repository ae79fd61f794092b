#!/usr/bin/env bash
# Molecule-like test of the Ansible bundle (Molecule is not installable here): lint, syntax-check, then
# check mode, converge, idempotence, event-mode toggle, rollback and tear-down against a booted Debian 12
# systemd in systemd-nspawn, with a throwaway PostgreSQL holding the real Kea schema.
#   test/ansible/run.sh            (root; `make test-ansible` builds the binary first)
# Env: KLM_BINARY (default dist/kea-lease-monitor), KLM_CACHE_DIR (rootfs cache, default
# /var/cache/kea-lease-monitor), KLM_KEEP=1 keeps the temp dir (logs) after the run.
# Last line: "N passed, N failed"; exit status non-zero on any failure.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${KLM_BINARY:-$REPO/dist/kea-lease-monitor}
HOST=klm-test
SVC=kea-lease-monitor.service
RT_USER=kea_lease_monitor RT_PASS="rt-$RANDOM$RANDOM-secret"
MIG_USER=kea_migrator MIG_PASS="mig-$RANDOM$RANDOM-secret"
MAC=aa:bb:cc:dd:ee:ff LEASE_IP=10.99.7.50 SUBNET=1

# Mounts (overlay root, tmpfs for nspawn) live in a private mount namespace: they vanish with it.
if [[ ${KLM_IN_NS:-} != 1 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "test-ansible: needs root (systemd-nspawn, mounts, nsenter)"; echo "0 passed, 1 failed"; exit 1
  fi
  if ! err=$(unshare --mount --propagation private -- true 2>&1); then
    echo "test-ansible: cannot create a mount namespace (unshare: $err); this test needs CAP_SYS_ADMIN"
    echo "0 passed, 1 failed"; exit 1
  fi
  exec env KLM_IN_NS=1 unshare --mount --propagation private -- "$0" "$@"
fi

PASS=0 FAIL=0 T="" NSPAWN_PID="" LEADER="" PGDIR="" TORN_DOWN=0
ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
nok() {
  FAIL=$((FAIL + 1)); echo "not ok - $1"
  if [[ -n ${2:-} ]]; then sed 's/^/    # /' <<<"$2" | tail -n 40; fi
}
# check NAME CMD...: a pass when CMD succeeds, else a failure with its output.
check() { local name=$1 out; shift; if out=$("$@" 2>&1); then ok "$name"; else nok "$name" "$out"; fi; }
# fatal NAME DETAIL: a failure after which nothing else can run.
fatal() { nok "$1" "${2:-}"; echo "test-ansible: aborting: $1"; exit 1; }

in_ct() { nsenter --target "$LEADER" --all -- "$@"; }
psql_pg() { psql -X -qAt -h "$PGDIR" -p "$PGPORT" -U postgres -d kea -v ON_ERROR_STOP=1 "$@"; }

teardown() {
  [[ $TORN_DOWN == 1 ]] && return 0
  TORN_DOWN=1
  local left=""
  if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    [[ -n $LEADER && -n $T ]] && in_ct journalctl --no-pager -o short-iso -u "$SVC" >"$T/service-journal.log" 2>&1
    kill -TERM "$NSPAWN_PID" 2>/dev/null   # nspawn turns SIGTERM into a clean container shutdown
    for _ in $(seq 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NSPAWN_PID" 2>/dev/null && sleep 0.5
    kill -0 "$NSPAWN_PID" 2>/dev/null && left+="container (nspawn pid $NSPAWN_PID) still running; "
  fi
  # Killing a PID namespace's init kills everything in it.
  if [[ -n $LEADER ]] && kill -0 "$LEADER" 2>/dev/null && [[ $(cat "/proc/$LEADER/comm" 2>/dev/null) == systemd ]]; then
    kill -KILL "$LEADER"; sleep 0.5
    kill -0 "$LEADER" 2>/dev/null && left+="container init (pid $LEADER) still running; "
  fi
  if [[ -n $PGDIR ]]; then
    "$REPO/scripts/pg-throwaway.sh" stop "$PGDIR" >/dev/null 2>&1
    [[ -e $PGDIR ]] && left+="PostgreSQL dir $PGDIR still there; "
  fi
  if [[ -n $T ]]; then
    mountpoint -q "$T/merged" && { umount "$T/merged" 2>/dev/null || umount -l "$T/merged"; }
    mountpoint -q "$T/merged" && left+="overlay $T/merged still mounted; "
    if [[ ${KLM_KEEP:-0} == 1 ]]; then echo "# kept $T"; else rm -rf "$T"; fi
  fi
  mountpoint -q /run/systemd/nspawn && umount /run/systemd/nspawn
  if [[ -z $left ]]; then ok "teardown: container, PostgreSQL, mounts and temp dir gone"; else nok "teardown" "$left"; fi
}
on_exit() {
  local rc=$?
  teardown
  echo "$PASS passed, $FAIL failed"
  if [[ $FAIL -gt 0 || $rc -ne 0 ]]; then exit 1; fi
  exit 0
}
trap on_exit EXIT
trap 'exit 130' INT TERM

export ANSIBLE_CONFIG=$REPO/ansible/ansible.cfg ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 \
  ANSIBLE_DEPRECATION_WARNINGS=0 ANSIBLE_RETRY_FILES_ENABLED=0

# ---- prerequisites ---------------------------------------------------------------------------
missing=""
for c in ansible-playbook ansible-lint systemd-nspawn systemd-analyze debootstrap nsenter psql kea-admin; do
  command -v "$c" >/dev/null || missing+=" $c"
done
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || missing+=" postgresql-15"
[[ -z $missing ]] || fatal "prerequisites" "missing:$missing (apt-get install -y ansible ansible-lint systemd-container debootstrap postgresql-15 kea-admin)"
[[ -x $BIN ]] || fatal "prerequisites" "$BIN is missing: run \`make build\` first"
ok "prerequisites (binary $(du -h "$BIN" | cut -f1), $(ansible-playbook --version 2>/dev/null | sed -n 1p))"

T=$(mktemp -d /tmp/klm-ansible-test.XXXXXX)
chmod 755 "$T"
# One snapshot for the whole run: a rebuild of dist/ mid-run must not look like an upgrade.
cp "$BIN" "$T/kea-lease-monitor" || fatal "snapshot of $BIN"
BIN=$T/kea-lease-monitor
export ANSIBLE_LOCAL_TEMP=$T/ansible-tmp ANSIBLE_HOME=$T/ansible-home

# ---- lint ------------------------------------------------------------------------------------
cd "$REPO" || exit 1
check "ansible-lint --profile production (no skips)" \
  ansible-lint -c ansible/.ansible-lint --profile production --nocolor \
  roles/kea_lease_monitor playbooks/kea_deploy.yml playbooks/kea_rollback.yml
check "ansible-playbook --syntax-check of both playbooks" \
  ansible-playbook -i ansible/inventory/hosts.yml --syntax-check playbooks/kea_deploy.yml playbooks/kea_rollback.yml

# ---- container root (built once, cached) -------------------------------------------------------
if ! ROOTFS=$("$REPO/test/ansible/rootfs.sh" 2>"$T/rootfs.err"); then
  fatal "Debian 12 container root (debootstrap)" "$(cat "$T/rootfs.err")"
fi
ok "Debian 12 container root at $ROOTFS"

# ---- PostgreSQL with the real Kea schema -------------------------------------------------------
PGDIR=$T/pg
if ! pgout=$("$REPO/scripts/pg-throwaway.sh" start "$PGDIR" 2>&1); then fatal "throwaway PostgreSQL" "$pgout"; fi
PGPORT=$(sed -n 's/^PGPORT=//p' <<<"$pgout")
# A migration account that owns Kea's tables, and a least-privilege runtime account; both need a
# password on the socket (scram), only the harness's postgres stays on trust.
if ! out=$(psql_pg 2>&1 <<SQL
CREATE ROLE $MIG_USER LOGIN PASSWORD '$MIG_PASS';
CREATE ROLE $RT_USER LOGIN PASSWORD '$RT_PASS';
ALTER TABLE hosts OWNER TO $MIG_USER;
ALTER TABLE lease4 OWNER TO $MIG_USER;
GRANT USAGE, CREATE ON SCHEMA public TO $MIG_USER;
GRANT USAGE ON SCHEMA public TO $RT_USER;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO $RT_USER;
GRANT INSERT, UPDATE, DELETE ON hosts TO $RT_USER;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO $RT_USER;
SQL
); then fatal "database accounts" "$out"; fi
cat >"$PGDIR/data/pg_hba.conf" <<HBA
local all postgres trust
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
HBA
psql_pg -c "SELECT pg_reload_conf()" >/dev/null
chmod 755 "$PGDIR"
ok "throwaway PostgreSQL (Kea schema $(psql_pg -c "SELECT version || '.' || minor FROM schema_version" 2>/dev/null), port $PGPORT, scram accounts)"

kea_triggers() { psql_pg -c "SELECT coalesce(string_agg(tgname, ',' ORDER BY tgname), '') FROM pg_trigger WHERE tgrelid = 'lease4'::regclass AND NOT tgisinternal AND tgname NOT IN ('lease4_ains', 'lease4_aupd', 'lease4_adel')"; }
kea_functions() { psql_pg -c "SELECT coalesce(string_agg(proname, ',' ORDER BY proname), '') FROM pg_proc WHERE pronamespace = 'public'::regnamespace"; }
catalog() { echo "triggers=$(kea_triggers) constraints=$(psql_pg -c "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'hosts'::regclass") functions=$(kea_functions)"; }
BASE_FUNCS=$(kea_functions)
BASE_CATALOG=$(catalog)

# ---- boot the container ------------------------------------------------------------------------
mkdir -p "$T/upper" "$T/work" "$T/merged" /run/systemd/nspawn
# nspawn refuses a disk-backed /run/systemd/nspawn; the cached root stays untouched under an overlay.
mount -t tmpfs tmpfs /run/systemd/nspawn || fatal "container boot" "cannot mount a tmpfs on /run/systemd/nspawn"
if ! mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$T/upper,workdir=$T/work" "$T/merged" 2>"$T/overlay.err"; then
  # No overlayfs here (module missing, or /tmp itself on overlayfs): boot a throwaway copy instead.
  echo "# overlay mount failed ($(cat "$T/overlay.err")); copying the root instead"
  cp -a "$ROOTFS/." "$T/merged/" || fatal "container boot" "cannot mount an overlay over, nor copy, $ROOTFS"
fi
systemd-nspawn -D "$T/merged" --machine="$HOST" --register=no --keep-unit --private-network \
  --console=passive --bind="$PGDIR:/run/pgsock" -b >"$T/console.log" 2>&1 &
NSPAWN_PID=$!
# nspawn's first child is a short-lived helper; the container's init is the child that runs systemd.
LEADER=""
for _ in $(seq 200); do
  for pid in $(pgrep -P "$NSPAWN_PID"); do
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == systemd ]] && LEADER=$pid
  done
  [[ -n $LEADER ]] && break
  kill -0 "$NSPAWN_PID" 2>/dev/null || break
  sleep 0.1
done
state=""
if [[ -n $LEADER ]]; then
  # The system bus appears a moment after PID 1; until then systemctl cannot even ask.
  deadline=$((SECONDS + 90))
  while ((SECONDS < deadline)); do
    state=$(timeout 60 nsenter --target "$LEADER" --all -- systemctl is-system-running --wait 2>&1)
    [[ $state == running || $state == degraded ]] && break
    kill -0 "$NSPAWN_PID" 2>/dev/null || break
    sleep 0.25
  done
fi
if [[ $state != running && $state != degraded ]]; then
  fatal "booted systemd in systemd-nspawn" "This machine cannot boot a systemd container, which this test needs (state: '${state:-no container process}').
Console:
$(tail -n 25 "$T/console.log")"
fi
ok "booted systemd in systemd-nspawn (system $state, leader pid $LEADER)"

# What a Kea host has: a lease file with Kea's header.
in_ct sh -c 'mkdir -p /var/lib/kea && printf "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n" >/var/lib/kea/kea-leases4.csv'

# ---- inventory: the container through nsenter, the shipped group_vars --------------------------
mkdir -p "$T/inventory"
ln -s "$REPO/ansible/group_vars" "$T/inventory/group_vars"
cat >"$T/nsenter-chroot" <<EOF
#!/bin/sh
# community.general.chroot calls: <exe> <root> /bin/sh -c CMD. Enter the booted container instead.
shift
exec nsenter --target $LEADER --all -- "\$@"
EOF
chmod 700 "$T/nsenter-chroot"
cat >"$T/inventory/hosts.yml" <<EOF
all:
  children:
    kea_lease_monitor:
      hosts:
        $HOST:
          ansible_connection: community.general.chroot
          ansible_host: $ROOTFS
          ansible_chroot_exe: $T/nsenter-chroot
          ansible_python_interpreter: /usr/bin/python3
          ansible_become: false
          kea_lm_binary_src: $BIN
          kea_db_host: /run/pgsock
          kea_db_port: $PGPORT
          kea_db_user: $RT_USER
          kea_db_password: $RT_PASS
          kea_db_migration_user: $MIG_USER
          kea_db_migration_password: $MIG_PASS
          kea_lm_subnet_ids: [$SUBNET]
          kea_lm_poll_interval: 1
          kea_lm_verify_settle_seconds: 3
EOF

# play NAME PLAYBOOK ARGS...: run a playbook, log to $T/NAME.log; sets RC and recap fields OK CHANGED FAILED.
play() {
  local name=$1 pb=$2; shift 2
  LOG=$T/$name.log
  ansible-playbook -i "$T/inventory/hosts.yml" "playbooks/$pb" "$@" >"$LOG" 2>&1
  RC=$?
  local line
  line=$(grep -E "^$HOST +: ok=" "$LOG" | tail -1)
  OK=$(sed -nE 's/.* ok=([0-9]+).*/\1/p' <<<"$line"); OK=${OK:--1}
  CHANGED=$(sed -nE 's/.* changed=([0-9]+).*/\1/p' <<<"$line"); CHANGED=${CHANGED:--1}
  FAILED=$(sed -nE 's/.* failed=([0-9]+).*/\1/p' <<<"$line"); FAILED=${FAILED:--1}
  RECAP="rc=$RC ok=$OK changed=$CHANGED failed=$FAILED"
}
play_tail() { echo "$RECAP (log $LOG)"; grep -E 'FAILED!|fatal:|msg:|^ +[A-Za-z].*' "$LOG" | tail -n 40; }
show() { in_ct systemctl show "$SVC" -p "$1" --value; }
unit_pid_exe() { in_ct readlink "/proc/$(show MainPID)/exe"; }

# ---- check mode on a fresh host ----------------------------------------------------------------
play check-fresh kea_deploy.yml --check
if [[ $RC -eq 0 && $FAILED -eq 0 && $OK -gt 0 && $CHANGED -gt 0 ]]; then ok "check mode on a fresh host ($RECAP)"
else nok "check mode on a fresh host" "$(play_tail)"; fi
left=$(in_ct sh -c "ls -d /opt/baremetal /etc/kea-lease-monitor /etc/systemd/system/$SVC /var/lib/kea/discovery 2>/dev/null; getent passwd kea-lease-monitor")
if [[ -z $left && $(catalog) == "$BASE_CATALOG" ]]; then ok "check mode changed nothing (host and database)"
else nok "check mode changed nothing" "host: $left
database: $(catalog)
before:   $BASE_CATALOG"; fi

# ---- converge ----------------------------------------------------------------------------------
play converge kea_deploy.yml
if [[ $RC -eq 0 && $FAILED -eq 0 && $CHANGED -gt 0 ]]; then ok "converge ($RECAP)"
else fatal "converge" "$(play_tail)"; fi

play idempotence kea_deploy.yml
if [[ $RC -eq 0 && $CHANGED -eq 0 && $OK -gt 5 ]]; then ok "idempotence: second run changed=0 and ran ($RECAP)"
else nok "idempotence" "$(play_tail)"; grep -E '^changed:' "$LOG" | head; fi

# ---- the service, file mode --------------------------------------------------------------------
check "service active and running" test "$(show ActiveState)/$(show SubState)" = active/running
exe=$(unit_pid_exe 2>&1)
check "service runs the installed binary ($exe)" test "$exe" = /opt/baremetal/kea-lease-monitor/kea-lease-monitor
check "installed binary is the built dist/kea-lease-monitor" test \
  "$(in_ct sha256sum /opt/baremetal/kea-lease-monitor/kea-lease-monitor | cut -d' ' -f1)" = "$(sha256sum "$BIN" | cut -d' ' -f1)"
check "file mode: no --use-database-events in ExecStart" bash -c "! grep -q -- --use-database-events <<<'$(show ExecStart)'"
check "runs as the dedicated user" test "$(in_ct stat -c %U "/proc/$(show MainPID)")" = kea-lease-monitor
check "user has no login shell" test "$(in_ct getent passwd kea-lease-monitor | cut -d: -f7)" = /usr/sbin/nologin
check "install dir root-owned 0755" test "$(in_ct stat -c '%U:%G %a' /opt/baremetal/kea-lease-monitor)" = "root:root 755"
check "output dir owned by the service user" test "$(in_ct stat -c '%U' /var/lib/kea/discovery)" = kea-lease-monitor
check "credential root-owned 0600" test "$(in_ct stat -c '%U:%G %a' /etc/kea-lease-monitor/db-password)" = "root:root 600"
check "NODE_OPTIONS cleared, LoadCredential set" bash -c \
  "grep -qx 'Environment=NODE_OPTIONS=' '$T/merged/etc/systemd/system/$SVC' && grep -q '^LoadCredential=db-password:' '$T/merged/etc/systemd/system/$SVC'"
check "no password in the unit, its environment file or ExecStart" bash -c \
  "! grep -rqF -e '$RT_PASS' -e '$MIG_PASS' '$T/merged/etc/systemd/system/$SVC' '$T/merged/etc/kea-lease-monitor/kea-lease-monitor.env' <<<'$(show ExecStart)'"
grep -q MemoryDenyWriteExecute "$T/merged/etc/systemd/system/$SVC" && ! grep -q '^#.*MemoryDenyWriteExecute' "$T/merged/etc/systemd/system/$SVC" \
  && nok "unit must not set MemoryDenyWriteExecute" || ok "unit does not set MemoryDenyWriteExecute"

# File mode (the default) must work inside the sandbox too: Kea appends a row to its lease file.
FILE_MAC=aa:bb:cc:dd:ee:01 FILE_IP=10.99.7.51
in_ct sh -c "echo '$FILE_IP,$FILE_MAC,,3600,$(( $(date +%s) + 3600 )),$SUBNET,0,0,file-bmc,0,' >>/var/lib/kea/kea-leases4.csv"
host_row="" disc=""
for _ in $(seq 60); do
  host_row=$(psql_pg -c "SELECT dhcp4_subnet_id, '0.0.0.0'::inet + ipv4_address FROM hosts WHERE dhcp_identifier = '\\x${FILE_MAC//:/}' AND dhcp_identifier_type = 0")
  disc=$(in_ct cat "/var/lib/kea/discovery/${FILE_MAC//:/-}.json" 2>/dev/null)
  [[ -n $host_row && -n $disc ]] && break
  sleep 0.5
done
check "file mode: lease file row -> reservation and discovery record ($host_row)" \
  test "$host_row|${disc:+disc}" = "$SUBNET|$FILE_IP|disc"

# analyze_unit MODE: the rendered unit, where it runs: verify prints nothing, exposure <= 2.0.
analyze_unit() {
  local verify_out sec score
  verify_out=$(in_ct systemd-analyze verify "/etc/systemd/system/$SVC" 2>&1)
  if [[ -z $verify_out ]]; then ok "$1 unit: systemd-analyze verify prints nothing"
  else nok "$1 unit: systemd-analyze verify printed something" "$verify_out"; fi
  sec=$(in_ct systemd-analyze security --offline=yes "/etc/systemd/system/$SVC" 2>&1)
  score=$(sed -nE 's/.*Overall exposure level for [^:]+: ([0-9.]+).*/\1/p' <<<"$sec")
  echo "# $1 unit: systemd-analyze security --offline=yes: exposure ${score:-?}"
  if [[ -n $score ]] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then ok "$1 unit: security exposure $score <= 2.0"
  else nok "$1 unit: security exposure ${score:-unknown} must be <= 2.0" "$sec"; fi
}
analyze_unit "file-mode"

# ---- event mode: check mode first, then the toggle ---------------------------------------------
play check-notify kea_deploy.yml --check -e kea_db_enable_notify=true
if [[ $RC -eq 0 && $FAILED -eq 0 && $CHANGED -gt 0 && $(catalog) == "$BASE_CATALOG" ]] \
  && ! grep -q -- --use-database-events "$T/merged/etc/systemd/system/$SVC"; then
  ok "check mode with kea_db_enable_notify=true reports changes and makes none ($RECAP)"
else nok "check mode with kea_db_enable_notify=true" "$(play_tail)
catalog: $(catalog)"; fi

inv_before=$(show InvocationID)
play notify-on kea_deploy.yml -e kea_db_enable_notify=true
if [[ $RC -eq 0 && $FAILED -eq 0 && $CHANGED -gt 0 ]]; then ok "toggle kea_db_enable_notify=true ($RECAP)"
else nok "toggle kea_db_enable_notify=true" "$(play_tail)"; fi
check "trigger present on lease4 ($(kea_triggers))" test "$(kea_triggers)" = kea_lm_lease4_notify_ins,kea_lm_lease4_notify_upd
status=$(in_ct env NODE_OPTIONS= KEA_LM_DB_HOST=/run/pgsock KEA_LM_DB_PORT="$PGPORT" KEA_LM_DB_USER="$RT_USER" KEA_DB_PASSWORD="$RT_PASS" \
  /opt/baremetal/kea-lease-monitor/kea-lease-monitor db status --json 2>&1)
check "db status --json reports notify_trigger true" grep -q '"notify_trigger": *true' <<<"$status"
check "unit in event mode (--use-database-events)" grep -q -- --use-database-events <<<"$(show ExecStart)"
inv_after=$(show InvocationID)
check "service restarted (new invocation) and active" test "$inv_after" != "$inv_before" -a "$(show ActiveState)" = active
check "journal: Listening for database lease events" bash -c \
  "nsenter --target $LEADER --all -- journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID=$(show InvocationID) | grep -q 'Listening for database lease events'"

analyze_unit "event-mode"

# -vvv: connection-level EXEC lines must not carry a secret either (checked with the other logs below).
play idempotence-notify kea_deploy.yml -vvv -e kea_db_enable_notify=true
if [[ $RC -eq 0 && $CHANGED -eq 0 && $OK -gt 5 ]]; then ok "idempotence in event mode ($RECAP)"
else nok "idempotence in event mode" "$(play_tail)"; fi

# ---- a lease becomes a reservation and a discovery record --------------------------------------
psql_pg -c "INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, hostname, state)
  VALUES ('$LEASE_IP'::inet - '0.0.0.0'::inet, '\\x${MAC//:/}', NULL, 3600, now() + interval '1 hour', $SUBNET, false, false, 'test-bmc', 0)" >/dev/null
host_row="" disc=""
for _ in $(seq 60); do
  host_row=$(psql_pg -c "SELECT dhcp4_subnet_id, '0.0.0.0'::inet + ipv4_address FROM hosts WHERE dhcp_identifier = '\\x${MAC//:/}' AND dhcp_identifier_type = 0")
  disc=$(in_ct cat "/var/lib/kea/discovery/${MAC//:/-}.json" 2>/dev/null)
  [[ -n $host_row && -n $disc ]] && break
  sleep 0.5
done
check "lease -> hosts reservation ($host_row)" test "$host_row" = "$SUBNET|$LEASE_IP"
check "lease -> discovery file ${MAC//:/-}.json in the container" \
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); s=json.dumps(d); assert sys.argv[2] in s and sys.argv[3] in s, s' "$disc" "$LEASE_IP" "$MAC"
check "service still running after the event" test "$(show ActiveState)/$(show NRestarts)" = active/0

# ---- toggle back -------------------------------------------------------------------------------
play notify-off kea_deploy.yml -e kea_db_enable_notify=false
if [[ $RC -eq 0 && $FAILED -eq 0 && $CHANGED -gt 0 ]]; then ok "toggle kea_db_enable_notify=false ($RECAP)"
else nok "toggle kea_db_enable_notify=false" "$(play_tail)"; fi
check "toggle off: trigger and functions gone" test "$(kea_triggers)|$(kea_functions)" = "|$BASE_FUNCS"
check "toggle off: unit in file mode and running" bash -c \
  "! grep -q -- --use-database-events <<<'$(show ExecStart)' && test '$(show ActiveState)' = active"

# ---- rollback from event mode ------------------------------------------------------------------
play notify-on-again kea_deploy.yml -e kea_db_enable_notify=true
[[ $RC -eq 0 && $(kea_triggers) != "" ]] && ok "event mode again, to roll back from ($RECAP)" || nok "event mode again" "$(play_tail)"
play rollback kea_rollback.yml
if [[ $RC -eq 0 && $FAILED -eq 0 && $CHANGED -gt 0 ]]; then ok "rollback ($RECAP)"
else nok "rollback" "$(play_tail)"; fi
check "rollback: trigger and its functions gone" test "$(kea_triggers)|$(kea_functions)" = "|$BASE_FUNCS"
check "rollback: Kea's own triggers and index untouched" test \
  "$(psql_pg -c "SELECT count(*) FROM pg_trigger WHERE tgname IN ('lease4_ains','lease4_aupd','lease4_adel')")$(psql_pg -c "SELECT count(*) FROM pg_indexes WHERE indexname = 'key_dhcp4_identifier_subnet_id'")" = 31
check "rollback: unit in file mode" bash -c "! grep -q -- --use-database-events <<<'$(show ExecStart)'"
check "rollback: service running" test "$(show ActiveState)/$(show SubState)" = active/running
play rollback-again kea_rollback.yml
if [[ $RC -eq 0 && $CHANGED -eq 0 && $OK -gt 5 ]]; then ok "rollback again: changed=0 ($RECAP)"
else nok "rollback again" "$(play_tail)"; fi

play rollback-drop-constraint kea_rollback.yml -e kea_rollback_drop_constraint=true
check "rollback with kea_rollback_drop_constraint: Kea's own index kept, nothing to change ($RECAP)" test \
  "$RC $CHANGED $(psql_pg -c "SELECT count(*) FROM pg_indexes WHERE indexname = 'key_dhcp4_identifier_subnet_id'")" = "0 0 1"

play no-database-management kea_deploy.yml -e kea_enable_database=false
check "kea_enable_database=false leaves the database alone, service unchanged ($RECAP)" test \
  "$RC $CHANGED $(catalog) $(show ActiveState)" = "0 0 $BASE_CATALOG active"

# ---- upgrade keeps the previous binary; rollback can return to it ------------------------------
cp "$BIN" "$T/kea-lease-monitor.next" && echo >>"$T/kea-lease-monitor.next"   # trailing bytes: a different build that still runs
sha() { in_ct sha256sum "$1" | cut -d' ' -f1; }
play upgrade kea_deploy.yml -e "kea_lm_binary_src=$T/kea-lease-monitor.next"
BIN_SHA=$(sha256sum "$BIN" | cut -d' ' -f1) NEXT_SHA=$(sha256sum "$T/kea-lease-monitor.next" | cut -d' ' -f1)
check "upgrade installs the new binary and keeps the old one as .previous ($RECAP)" test \
  "$RC $(sha /opt/baremetal/kea-lease-monitor/kea-lease-monitor) $(sha /opt/baremetal/kea-lease-monitor/kea-lease-monitor.previous) $(show ActiveState)" \
  = "0 $NEXT_SHA $BIN_SHA active"
play rollback-binary kea_rollback.yml -e kea_rollback_restore_previous_binary=true
check "rollback with kea_rollback_restore_previous_binary returns to it, restarted ($RECAP)" test \
  "$RC $(sha /opt/baremetal/kea-lease-monitor/kea-lease-monitor) $(show ActiveState)/$(show SubState) $(in_ct readlink "/proc/$(show MainPID)/exe")" \
  = "0 $BIN_SHA active/running /opt/baremetal/kea-lease-monitor/kea-lease-monitor"
play rollback-binary-again kea_rollback.yml -e kea_rollback_restore_previous_binary=true
if [[ $RC -eq 0 && $CHANGED -eq 0 && $OK -gt 5 ]]; then ok "binary rollback again: changed=0 ($RECAP)"
else nok "binary rollback again" "$(play_tail)"; fi

# ---- preflight: an unreachable database stops the play before anything changes -----------------
play bad-password kea_deploy.yml -e kea_db_password=not-the-password
if [[ $RC -ne 0 && $CHANGED -eq 0 ]] && grep -q 'Cannot reach PostgreSQL' "$LOG"; then ok "preflight fails clearly on a wrong database password ($RECAP)"
else nok "preflight must fail on a wrong database password" "$(play_tail)"; fi

# ---- a service that cannot start fails the play, with the journal -------------------------------
play crash kea_deploy.yml -e '{"kea_lm_extra_args": ["--no-such-flag"]}'
if [[ $RC -ne 0 && $FAILED -gt 0 ]] && grep -q 'Last journal lines' "$LOG"; then
  ok "a crash-looping service fails the play with the journal's last lines ($RECAP)"
else nok "a crash-looping service must fail the play" "$(play_tail)"; fi

# ---- no secret in any output -------------------------------------------------------------------
leaks=$(grep -lF -e "$RT_PASS" -e "$MIG_PASS" "$T"/*.log 2>/dev/null)
if [[ -z $leaks ]]; then ok "no password in any playbook output (one run at -vvv)"; else nok "password in playbook output" "$leaks"; fi
in_ct journalctl --no-pager -o cat -u "$SVC" | grep -qF -e "$RT_PASS" -e "$MIG_PASS" \
  && nok "password in the service journal" || ok "no password in the service journal"

teardown
