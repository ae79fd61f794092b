#!/usr/bin/env bash
# Molecule-like test of the Ansible bundle (Molecule is not installable here): lint, syntax-check, the
# collection built with `ansible-galaxy collection build` and installed into a temp collections path, then
# for Debian 12 (bookworm) and Debian 13 (trixie), each a booted systemd in systemd-nspawn with a throwaway
# PostgreSQL holding the real Kea schema: converge, idempotence, event-mode toggle, rollback, the undo
# (kea_rollback_remove_reservations) and tear-down; on Debian 12 also check mode, tags, the writer setting,
# upgrade and binary rollback, preflight failures and a configuration error. The playbooks run from the INSTALLED
# collection (baremetal.kea_lease_monitor.kea_deploy), never from the working tree. The state after each
# playbook is checked by testinfra tests (test/ansible/verify), each a named test with a real assertion.
#   test/ansible/run.sh [bookworm] [trixie]   (root; `make test-ansible` builds the binary first)
# Env: KLM_CACHE_DIR (rootfs cache, default /var/cache/kea-lease-monitor), KLM_KEEP=1 keeps the temp dir,
# KLM_SCENARIOS='converge fn ...' runs only those scenario functions (development).
# Last line: "N passed, N failed"; exit status non-zero on any failure.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROLE_BIN=$REPO/roles/kea_lease_monitor/files/kea-lease-monitor
SUITES=("$@"); ((${#SUITES[@]})) || SUITES=(bookworm trixie)
HOST=klm-test
SVC=kea-lease-monitor.service
COLL=baremetal.kea_lease_monitor
ROLE_FQ=$COLL.kea_lease_monitor
RT_USER=kea_lease_monitor RT_PASS="rt-$RANDOM$RANDOM-secret"
MIG_USER=kea_migrator MIG_PASS="mig-$RANDOM$RANDOM-secret"
SUBNET=1 METRICS_PORT=9548
# An extra argument holding spaces (ExecStart must quote it), valid in file and event mode alike: a
# deny rule that matches no hostname.
EXTRA_DENY='^no such host$'

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

PASS=0 FAIL=0 T="" NSPAWN_PID="" LEADER="" PGDIR="" SUITE="" CT=""
ok() { PASS=$((PASS + 1)); echo "ok - ${SUITE:+$SUITE: }$1"; }
nok() {
  FAIL=$((FAIL + 1)); echo "not ok - ${SUITE:+$SUITE: }$1"
  if [[ -n ${2:-} ]]; then sed 's/^/    # /' <<<"$2" | tail -n 40; fi
}
# check NAME CMD...: a pass when CMD succeeds, else a failure with its output.
check() { local name=$1 out; shift; if out=$("$@" 2>&1); then ok "$name"; else nok "$name" "$out"; fi; }
# fatal NAME DETAIL: a failure after which nothing else can run.
fatal() { nok "$1" "${2:-}"; echo "test-ansible: aborting: $1"; exit 1; }

in_ct() { nsenter --target "$LEADER" --all -- "$@"; }
psql_pg() { psql -X -qAt -h "$PGDIR" -p "$PGPORT" -U postgres -d kea -v ON_ERROR_STOP=1 "$@"; }

# Stops this suite's container and PostgreSQL; LEFT says what could not be removed.
stop_suite() {
  local left=""
  if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    [[ -n $LEADER ]] && in_ct journalctl --no-pager -o short-iso -u "$SVC" >"$CT/service-journal.log" 2>&1
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
  if [[ -n $CT ]] && mountpoint -q "$CT/merged"; then
    umount "$CT/merged" 2>/dev/null || umount -l "$CT/merged"
    mountpoint -q "$CT/merged" && left+="overlay $CT/merged still mounted; "
  fi
  mountpoint -q /run/systemd/nspawn && umount /run/systemd/nspawn
  NSPAWN_PID="" LEADER="" PGDIR=""
  LEFT=$left
}
on_exit() {
  local rc=$? left
  stop_suite; left=$LEFT
  if [[ -n $T ]]; then
    if [[ ${KLM_KEEP:-0} == 1 ]]; then echo "# kept $T"; else rm -rf "$T"; fi
  fi
  SUITE=""
  if [[ -z $left ]]; then ok "teardown: containers, PostgreSQL, mounts and temp dir gone"; else nok "teardown" "$left"; fi
  echo "$PASS passed, $FAIL failed"
  if [[ $FAIL -gt 0 || $rc -ne 0 ]]; then exit 1; fi
  exit 0
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---- prerequisites ---------------------------------------------------------------------------
missing=""
for c in ansible-playbook ansible-galaxy ansible-lint systemd-nspawn debootstrap nsenter psql kea-admin; do
  command -v "$c" >/dev/null || missing+=" $c"
done
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || missing+=" postgresql-15"
/usr/bin/python3 -c 'import testinfra, pytest, psycopg2, yaml' 2>/dev/null || missing+=" python3-testinfra/python3-pytest/python3-psycopg2"
[[ -z $missing ]] || fatal "prerequisites" "missing:$missing (scripts/install-deps.sh installs them)"
[[ -x $ROLE_BIN ]] || fatal "prerequisites" "$ROLE_BIN is missing: run \`make build\` first"
ok "prerequisites ($(ansible-playbook --version 2>/dev/null | sed -n 1p), $(/usr/bin/python3 -m pytest --version 2>&1 | head -1))"

T=$(mktemp -d /tmp/klm-ansible-test.XXXXXX)
chmod 755 "$T"
export ANSIBLE_LOCAL_TEMP=$T/ansible-tmp ANSIBLE_HOME=$T/ansible-home ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 \
  ANSIBLE_DEPRECATION_WARNINGS=0 ANSIBLE_RETRY_FILES_ENABLED=0

# verify NAME FILE...: the testinfra tests in FILEs against the current container; one ok/not ok per test.
verify() {
  local name=$1 out line t r; shift
  out=$T/pytest-$SUITE-$name.log
  (cd "$REPO/test/ansible/verify" && /usr/bin/python3 -m pytest -p no:cacheprovider -v --tb=short -o console_output_style=classic \
    --hosts="nsenter://$LEADER" "$@") >"$out" 2>&1
  local n=0
  while read -r line; do
    t=$(sed -E 's/^[^:]*::([A-Za-z0-9_]+).*/\1/' <<<"$line"); r=${line##* }
    n=$((n + 1))
    if [[ $r == PASSED ]]; then ok "$name: $t"
    else nok "$name: $t" "$(awk -v t="$t" '$0 ~ "_+ "t"\\[" {p=1} p && /^_{5,} / && $0 !~ t {p=0} p' "$out" | tail -n 25)"; fi
  done < <(grep -E '::[A-Za-z0-9_]+(\[[^]]*\])? (PASSED|FAILED|ERROR)' "$out" | sed -E 's/ +\[ *[0-9]+%\]$//')
  ((n > 0)) || nok "$name: pytest ran no test" "$(tail -n 30 "$out")"
}

# ---- lint, static checks, the collection ------------------------------------------------------
cd "$REPO" || exit 1
check "ansible-lint --offline --profile production over the whole repository (no config, no skips)" \
  env -u ANSIBLE_CONFIG ansible-lint --offline --profile production --nocolor
check "ansible-playbook --syntax-check of both playbooks as typed from the repository root (no ANSIBLE_CONFIG)" \
  env -u ANSIBLE_CONFIG ansible-playbook -i localhost, --syntax-check playbooks/kea_deploy.yml playbooks/kea_rollback.yml
SUITE=static; LEADER=0; verify role test_static.py; SUITE=""

# A plain `ansible-galaxy collection build` from the root must fail (galaxy.yml is in collection/), and the
# staging script must refuse a role without the executable.
CLONE=$T/plain-clone
mkdir -p "$CLONE" && tar -C "$REPO" --exclude=roles/kea_lease_monitor/files/kea-lease-monitor -cf - \
  collection ansible roles playbooks package.json | tar -C "$CLONE" -xf -
if out=$(cd "$CLONE" && ansible-galaxy collection build --output-path "$T/plain" . 2>&1); then
  nok "a plain ansible-galaxy collection build from the root must fail" "$out"
else ok "a plain ansible-galaxy collection build from the root fails: $(grep -m1 ERROR <<<"$out")"; fi
if out=$("$CLONE/ansible/build-collection.sh" "$T/plain" 2>&1) || compgen -G "$T/plain/*.tar.gz" >/dev/null; then
  nok "build-collection.sh must refuse a role without the executable" "$out"
else ok "build-collection.sh refuses a role without the executable: $out"; fi
rm -rf "$CLONE" "$T/plain"
if ! out=$("$REPO/ansible/build-collection.sh" "$T" 2>&1); then fatal "ansible/build-collection.sh (make collection)" "$out"; fi
TARBALL=$(ls "$T"/baremetal-kea_lease_monitor-*.tar.gz)
if ! out=$(ansible-galaxy collection install --no-deps -p "$T/collections" "$TARBALL" 2>&1); then fatal "ansible-galaxy collection install" "$out"; fi
INSTALLED=$T/collections/ansible_collections/baremetal/kea_lease_monitor
COLL_BIN=$INSTALLED/roles/kea_lease_monitor/files/kea-lease-monitor
check "collection $(basename "$TARBALL") ($(du -h "$TARBALL" | cut -f1)) carries the built executable" \
  cmp "$COLL_BIN" "$REPO/dist/kea-lease-monitor"
check "collection holds the role, both playbooks, the inventory plugin, meta/runtime.yml and CHANGELOG.md, and no development file" bash -c \
  "tar tzf '$TARBALL' | grep -qx plugins/inventory/kea_lease_monitor.py && tar tzf '$TARBALL' | grep -qx playbooks/kea_deploy.yml && tar tzf '$TARBALL' | grep -qx playbooks/kea_rollback.yml \
   && tar tzf '$TARBALL' | grep -qx roles/kea_lease_monitor/tasks/main.yml && tar tzf '$TARBALL' | grep -qx meta/runtime.yml \
   && tar tzf '$TARBALL' | grep -qx CHANGELOG.md \
   && ! tar tzf '$TARBALL' | grep -E '^(src|test|node_modules|dist|bench|scripts|migrations|docs|alerts|dashboards|ansible|collection)/|eslint|prettier|package|tsconfig|Makefile|^playbooks/roles'"
# The playbooks run from the installed collection: no roles path into the working tree.
mkdir -p "$T/no-roles"
cat >"$T/ansible.cfg" <<EOF
[defaults]
collections_path = $T/collections:/usr/share/ansible/collections:/usr/lib/python3/dist-packages
roles_path = $T/no-roles
interpreter_python = /usr/bin/python3
stdout_callback = default
callback_result_format = yaml
gathering = explicit
nocows = true
retry_files_enabled = false
[connection]
pipelining = true
EOF
export ANSIBLE_CONFIG=$T/ansible.cfg

# ---- one suite: a booted container of that Debian release ------------------------------------
# play NAME PLAYBOOK ARGS...: run a playbook of the installed collection, log to $CT/NAME.log; sets RC and
# recap fields OK CHANGED FAILED.
play() {
  local name=$1 pb=$2; shift 2
  LOG=$CT/$name.log
  if [[ $pb == playbooks/* ]]; then
    # As a user types it: from the repository root, the working tree's playbook, no ANSIBLE_CONFIG.
    (cd "$REPO" && env -u ANSIBLE_CONFIG ansible-playbook -i "$CT/inventory/hosts.yml" "$pb" "$@") >"$LOG" 2>&1
  else
    ansible-playbook -i "$CT/inventory/hosts.yml" "$COLL.$pb" "$@" >"$LOG" 2>&1
  fi
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
kea_triggers() { psql_pg -c "SELECT coalesce(string_agg(tgname, ',' ORDER BY tgname), '') FROM pg_trigger WHERE tgrelid = 'lease4'::regclass AND NOT tgisinternal AND tgname NOT IN ('lease4_ains', 'lease4_aupd', 'lease4_adel')"; }
# The reservation writer's functions (migration 0004): the default undo (--notify-only) keeps them with the
# version table; the full one (--drop-constraint) drops them. kea_functions() is every other function.
WRITER_FUNCS="kea_lm_fence_held,kea_lm_owned,kea_lm_owned_cast,kea_lm_write_reservations"
_writer_in="'kea_lm_fence_held','kea_lm_owned','kea_lm_owned_cast','kea_lm_write_reservations'"
kea_functions() { psql_pg -c "SELECT coalesce(string_agg(proname, ',' ORDER BY proname), '') FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname NOT IN ($_writer_in)"; }
writer_functions() { psql_pg -c "SELECT coalesce(string_agg(proname, ',' ORDER BY proname), '') FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname IN ($_writer_in)"; }
catalog() { echo "triggers=$(kea_triggers) constraints=$(psql_pg -c "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'hosts'::regclass") functions=$(kea_functions)"; }

start_suite() {
  CT=$T/$SUITE
  mkdir -p "$CT/upper" "$CT/work" "$CT/merged" "$CT/inventory"
  local rootfs pgout out state pid
  if ! rootfs=$("$REPO/test/ansible/rootfs.sh" "$SUITE" 2>"$CT/rootfs.err"); then
    fatal "container root (debootstrap $SUITE)" "$(cat "$CT/rootfs.err")"
  fi
  ok "container root at $rootfs"

  # PostgreSQL with the real Kea schema: a migration account that owns Kea's tables and a least-privilege
  # runtime account, both with a password on the socket (scram); only the harness's postgres is trusted.
  PGDIR=$CT/pg
  if ! pgout=$("$REPO/scripts/pg-throwaway.sh" start "$PGDIR" 2>&1); then fatal "throwaway PostgreSQL" "$pgout"; fi
  PGPORT=$(sed -n 's/^PGPORT=//p' <<<"$pgout")
  if ! out=$(psql_pg 2>&1 <<SQL
CREATE ROLE $MIG_USER LOGIN PASSWORD '$MIG_PASS';
CREATE ROLE $RT_USER LOGIN PASSWORD '$RT_PASS';
ALTER TABLE hosts OWNER TO $MIG_USER;
ALTER TABLE lease4 OWNER TO $MIG_USER;
GRANT USAGE, CREATE ON SCHEMA public TO $MIG_USER;
GRANT SELECT ON dhcp4_options, ipv6_reservations TO $MIG_USER;
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
  ok "throwaway PostgreSQL (Kea schema $(psql_pg -c "SELECT version || '.' || minor FROM schema_version" 2>/dev/null), port $PGPORT)"
  BASE_FUNCS=$(kea_functions)
  BASE_CATALOG=$(catalog)

  # nspawn refuses a disk-backed /run/systemd/nspawn; the cached root stays untouched under an overlay.
  mkdir -p /run/systemd/nspawn
  mount -t tmpfs tmpfs /run/systemd/nspawn || fatal "container boot" "cannot mount a tmpfs on /run/systemd/nspawn"
  if ! mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$CT/upper,workdir=$CT/work" "$CT/merged" 2>"$CT/overlay.err"; then
    echo "# overlay mount failed ($(cat "$CT/overlay.err")); copying the root instead"
    cp -a "$rootfs/." "$CT/merged/" || fatal "container boot" "cannot mount an overlay over, nor copy, $rootfs"
  fi
  # systemd >= 256 (trixie) refuses a cgroup v1 host; give the container a unified (v2) hierarchy.
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -D "$CT/merged" --machine="$HOST" --register=no --keep-unit --private-network \
    --console=passive --bind="$PGDIR:/run/pgsock" -b >"$CT/console.log" 2>&1 &
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
    local deadline=$((SECONDS + 90))
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
$(tail -n 25 "$CT/console.log")"
  fi
  ok "booted $(in_ct sh -c '. /etc/os-release; echo "$PRETTY_NAME"'), $(in_ct systemctl --version | head -1) (system $state)"

  # What a Kea host has: a lease file with Kea's header. On trixie, Kea 3.0's layout: its group `_kea`
  # (created here, Kea itself is not installed) and a lease file without access for "other".
  in_ct sh -c 'mkdir -p /var/lib/kea && printf "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n" >/var/lib/kea/kea-leases4.csv'
  if [[ $SUITE == trixie ]]; then
    in_ct sh -c 'groupadd --system _kea && useradd --system -g _kea -s /usr/sbin/nologin -d /var/lib/kea _kea \
      && chown _kea:_kea /var/lib/kea /var/lib/kea/kea-leases4.csv && chmod 0750 /var/lib/kea && chmod 0640 /var/lib/kea/kea-leases4.csv'
  fi

  ln -s "$REPO/ansible/group_vars" "$CT/inventory/group_vars"
  cat >"$CT/nsenter-chroot" <<EOF
#!/bin/sh
# community.general.chroot calls: <exe> <root> /bin/sh -c CMD. Enter the booted container instead.
shift
exec nsenter --target $LEADER --all -- "\$@"
EOF
  chmod 700 "$CT/nsenter-chroot"
  cat >"$CT/inventory/hosts.yml" <<EOF
all:
  children:
    kea_lease_monitor:
      hosts:
        $HOST:
          ansible_connection: community.general.chroot
          ansible_host: $rootfs
          ansible_chroot_exe: $CT/nsenter-chroot
          ansible_python_interpreter: /usr/bin/python3
          ansible_become: false
          kea_lease_monitor_db_host: /run/pgsock
          kea_lease_monitor_db_port: $PGPORT
          kea_lease_monitor_db_user: $RT_USER
          kea_lease_monitor_db_password: $RT_PASS
          kea_lease_monitor_db_migration_user: $MIG_USER
          kea_lease_monitor_db_migration_password: $MIG_PASS
          kea_lease_monitor_subnet_ids: [$SUBNET]
          kea_lease_monitor_policy:
            allow_mac_prefix: ["aa:bb:cc", "02:aa"]
            max_reservations_per_subnet: 1000
          kea_lease_monitor_metrics_port: $METRICS_PORT
          kea_lease_monitor_poll_interval: 1
          kea_lease_monitor_verify_settle_seconds: 3
          kea_lease_monitor_extra_args: ["--deny-hostname", "$EXTRA_DENY"]
          kea_lease_monitor_rollback_backup_dir: $CT/backups
EOF
  export KLM_PG_HOST=$PGDIR KLM_PG_PORT=$PGPORT KLM_RT_PASS=$RT_PASS KLM_MIG_PASS=$MIG_PASS KLM_SUBNET=$SUBNET \
    KLM_BINARY=$COLL_BIN KLM_EXTRA_DENY=$EXTRA_DENY KLM_READY_URL=http://127.0.0.1:$METRICS_PORT/readyz \
    KLM_BASE_FUNCTIONS=$BASE_FUNCS KLM_WRITER_FUNCTIONS=$WRITER_FUNCS KLM_KEA_GROUP=$([[ $SUITE == trixie ]] && echo _kea)
}

# converge, idempotence, file mode, event-mode toggle on and off, rollback. Both suites.
core_scenario() {
  play converge playbooks/kea_deploy.yml
  if [[ $RC -eq 0 && $FAILED -eq 0 && $CHANGED -gt 0 ]]; then ok "converge as typed: ansible-playbook -i hosts playbooks/kea_deploy.yml from the root, no ANSIBLE_CONFIG ($RECAP)"
  else fatal "converge" "$(play_tail)"; fi
  play idempotence kea_deploy
  if [[ $RC -eq 0 && $CHANGED -eq 0 && $OK -gt 5 ]]; then ok "idempotence: second run changed=0 and ran ($RECAP)"
  else nok "idempotence" "$(play_tail)
$(grep -E '^changed:' "$LOG" | head)"; fi
  verify file-mode test_service.py test_file_mode.py

  local inv_before paths
  inv_before=$(show InvocationID)
  play notify-on kea_deploy -e kea_db_enable_notify=true
  if [[ $RC -eq 0 && $FAILED -eq 0 && $CHANGED -gt 0 && $(show InvocationID) != "$inv_before" ]]; then
    ok "toggle kea_db_enable_notify=true: changed, service restarted ($RECAP)"
  else nok "toggle kea_db_enable_notify=true" "$(play_tail)"; fi
  # -vvv: connection-level EXEC lines must not carry a secret either (checked with the other logs below);
  # it also prints each task's path, which must be inside the installed collection.
  if [[ $SUITE == bookworm ]]; then
    play idempotence-notify kea_deploy -vvv -e kea_db_enable_notify=true
    if [[ $RC -eq 0 && $CHANGED -eq 0 && $OK -gt 5 ]]; then ok "idempotence in event mode ($RECAP)"
    else nok "idempotence in event mode" "$(play_tail)"; fi
    paths=$(sed -nE 's/^task path: (.*):[0-9]+$/\1/p' "$LOG" | sort -u)
    if [[ -n $paths ]] && ! grep -v "^$INSTALLED/" <<<"$paths"; then ok "every task ran from the installed collection ($(wc -l <<<"$paths") files)"
    else nok "tasks must run from the installed collection, not the working tree" "$paths"; fi
  fi
  verify event-mode test_service.py test_event_mode.py

  play notify-off kea_deploy -e kea_db_enable_notify=false
  if [[ $RC -eq 0 && $FAILED -eq 0 && $CHANGED -gt 0 ]]; then ok "toggle kea_db_enable_notify=false ($RECAP)"
  else nok "toggle kea_db_enable_notify=false" "$(play_tail)"; fi
  check "toggle off: the trigger and its functions gone, the reservation writer's kept" \
    test "$(kea_triggers)|$(kea_functions)|$(writer_functions)" = "|$BASE_FUNCS|$WRITER_FUNCS"

  play notify-on-again kea_deploy -e kea_db_enable_notify=true
  if [[ $RC -eq 0 && -n $(kea_triggers) ]]; then ok "event mode again, to roll back from ($RECAP)"; else nok "event mode again" "$(play_tail)"; fi
  play rollback kea_rollback
  if [[ $RC -eq 0 && $FAILED -eq 0 && $CHANGED -gt 0 ]]; then ok "rollback ($RECAP)"
  else nok "rollback" "$(play_tail)"; fi
  verify rollback test_rollback.py test_service.py
  [[ $SUITE == bookworm ]] || return 0
  play rollback-again kea_rollback
  if [[ $RC -eq 0 && $CHANGED -eq 0 && $OK -gt 5 ]]; then ok "rollback again: changed=0 ($RECAP)"
  else nok "rollback again" "$(play_tail)"; fi
}

# The undo: an operator's reservation for a MAC the monitor also sees in the lease file, an operator's
# option and IPv6 reservation on one of the monitor's own reservations (a host delete cascades to them),
# then kea_rollback_remove_reservations. Last of a suite: it stops the service.
undo_scenario() {
  local op_mac=02:aa:00:00:ee:01 op_id own_id owned backup
  op_id=$(psql_pg -c "INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, ipv4_address, hostname, user_context)
    VALUES ('\\x${op_mac//:/}', 0, $SUBNET, '10.99.7.200'::inet - '0.0.0.0'::inet, 'ops-pinned', '{\"owner\":\"ops\"}') RETURNING host_id" | head -1)
  in_ct sh -c "echo '10.99.7.209,$op_mac,,3600,$(($(date +%s) + 3600)),$SUBNET,0,0,laptop,0,' >>/var/lib/kea/kea-leases4.csv"
  # ...and one device of the monitor's own, so that the undo has a reservation of its own to back up.
  in_ct sh -c "echo '10.99.7.210,aa:bb:cc:00:ee:02,,3600,$(($(date +%s) + 3600)),$SUBNET,0,0,bmc-undo,0,' >>/var/lib/kea/kea-leases4.csv"
  sleep 3   # a monitor that did not respect the operator's row would have rewritten it by now (poll interval 1 s)
  for _ in $(seq 30); do
    own_id=$(psql_pg -c "SELECT min(host_id) FROM hosts WHERE user_context LIKE '%\"kea-lease-monitor\"%'")
    [[ -n $own_id ]] && break; sleep 1
  done
  [[ -n $own_id ]] || nok "the monitor made a reservation to undo" "none after 30 s"
  psql_pg -c "INSERT INTO dhcp4_options (code, formatted_value, space, persistent, host_id, scope_id) VALUES (42, '10.99.7.1', 'dhcp4', false, $own_id, 3);
    INSERT INTO ipv6_reservations (address, host_id) VALUES ('2001:db8::42', $own_id)" >/dev/null
  owned=$(psql_pg -c "SELECT count(*) FROM hosts WHERE user_context LIKE '%\"kea-lease-monitor\"%'")
  export KLM_OPERATOR_HOST_ID=$op_id KLM_UNOWNED_ROWS
  verify before-undo test_purge_before.py
  KLM_UNOWNED_ROWS=$(psql_pg -c "SELECT count(*) FROM hosts WHERE user_context IS NULL OR user_context = '' OR NOT (user_context::jsonb ? 'kea-lease-monitor')")
  play undo kea_rollback -e kea_rollback_remove_reservations=true
  if [[ $RC -eq 0 && $FAILED -eq 0 && $CHANGED -gt 0 ]] && grep -q 'reservations purge: {' "$LOG"; then ok "rollback with kea_rollback_remove_reservations ($RECAP)"
  else nok "rollback with kea_rollback_remove_reservations" "$(play_tail)"; fi
  # The backup reached the controller before the purge: every owned reservation, and the rows the purge cascaded.
  backup=$(ls "$CT"/backups/*.json 2>/dev/null | head -1)
  check "the undo fetched a backup to the controller first: $owned reservations, the option and the IPv6 reservation of host $own_id" \
    python3 - "$backup" "$owned" "$own_id" <<'PY'
import json, sys
b = json.load(open(sys.argv[1])); n, hid = int(sys.argv[2]), int(sys.argv[3])
assert len(b["reservations"]) == n == len(b["hosts"]) and n > 0, (len(b["reservations"]), len(b["hosts"]), n)
assert [o["code"] for o in b["dhcp4_options"] if o["host_id"] == hid] == [42], b["dhcp4_options"]
assert [r["address"] for r in b["ipv6_reservations"] if r["host_id"] == hid] == ["2001:db8::42"], b["ipv6_reservations"]
assert all("kea-lease-monitor" in json.loads(h["user_context"]) for h in b["hosts"])
PY
  check "the backup was written before the purge ran" bash -c "[[ \$(grep -n 'Undo | write the backup' '$LOG' | head -1 | cut -d: -f1) -lt \$(grep -n 'reservations purge: {' '$LOG' | head -1 | cut -d: -f1) ]]"
  verify undo test_purge.py test_journal.py
  play undo-again kea_rollback -e kea_rollback_remove_reservations=true
  if [[ $RC -eq 0 && $CHANGED -le 1 && $OK -gt 3 ]]; then ok "undo again: nothing but a new (empty) backup changes ($RECAP)"
  else nok "undo again" "$(play_tail)"; fi
}

converge() { play converge kea_deploy; [[ $RC -eq 0 ]] || fatal "converge" "$(play_tail)"; }

# Every tag, every --skip-tags and --check --tags on a converged host: each runs, changes nothing and runs
# only its own tasks (plus the preflight, tagged always).
tags_scenario() {
  local t sec others
  play pre-tags kea_deploy
  [[ $RC -eq 0 ]] || nok "deploy before the tag runs" "$(play_tail)"
  for t in install configure database service verify; do
    sec=${t^}
    [[ $t == database ]] && sec='(Database|Drop the NOTIFY trigger)'
    play "tags-$t" kea_deploy --tags "kea_lease_monitor_$t"
    # A role task line reads "TASK [baremetal.kea_lease_monitor.kea_lease_monitor : Install | ...]".
    others=$(grep -E '^TASK \[' "$LOG" | grep -vE "^TASK \[$ROLE_FQ : (Validating arguments|Preflight|Decide the run mode|$sec)" || true)
    if [[ $RC -eq 0 && $CHANGED -eq 0 ]] && grep -qE "^TASK \[$ROLE_FQ : $sec" "$LOG" && [[ -z $others ]]; then
      ok "--tags kea_lease_monitor_$t runs its tasks only, changes nothing ($RECAP)"
    else nok "--tags kea_lease_monitor_$t" "$(play_tail)
other tasks: $others"; fi
    play "skip-tags-$t" kea_deploy --skip-tags "kea_lease_monitor_$t"
    if [[ $RC -eq 0 && $CHANGED -eq 0 ]] && ! grep -qE "^TASK \[$ROLE_FQ : $sec" "$LOG"; then
      ok "--skip-tags kea_lease_monitor_$t runs the rest, changes nothing ($RECAP)"
    else nok "--skip-tags kea_lease_monitor_$t" "$(play_tail)"; fi
    play "check-tags-$t" kea_deploy --check --tags "kea_lease_monitor_$t"
    if [[ $RC -eq 0 && $FAILED -eq 0 && $CHANGED -eq 0 ]]; then ok "--check --tags kea_lease_monitor_$t ($RECAP)"
    else nok "--check --tags kea_lease_monitor_$t" "$(play_tail)"; fi
  done
}

# An empty password (a run without the vault) never removes the credential.
password_scenario() {
  local cred inv
  cred=$(in_ct sha256sum /etc/kea-lease-monitor/db-password) inv=$(show InvocationID)
  play no-vault kea_deploy -e kea_enable_database=false -e kea_lease_monitor_db_password=
  check "a run without the vault (empty password, kea_enable_database=false) keeps the credential, LoadCredential and the service ($RECAP)" test \
    "$RC $CHANGED $(in_ct sha256sum /etc/kea-lease-monitor/db-password) $(in_ct grep -c '^LoadCredential=db-password:' /etc/systemd/system/$SVC) $(show InvocationID)" \
    = "0 0 $cred 1 $inv"
  play no-vault-db kea_deploy -e kea_lease_monitor_db_password=
  if [[ $RC -ne 0 && $CHANGED -eq 0 ]] && grep -q 'kea_lease_monitor_db_password (the runtime password' "$LOG" \
    && [[ "$(in_ct sha256sum /etc/kea-lease-monitor/db-password) $(show InvocationID)" == "$cred $inv" ]]; then
    ok "with kea_enable_database an empty password stops the play in preflight, credential and service untouched ($RECAP)"
  else nok "an empty password with kea_enable_database must stop the play in preflight" "$(play_tail)"; fi
  play no-vault-rollback kea_rollback -e kea_enable_database=false -e kea_lease_monitor_db_password=
  check "the rollback without the vault keeps the credential ($RECAP)" test \
    "$RC $(in_ct sha256sum /etc/kea-lease-monitor/db-password) $(show ActiveState)" = "0 $cred active"
  # The undo with the database toggle off: refused before anything is stopped or removed.
  local hosts
  inv=$(show InvocationID) hosts=$(psql_pg -c "SELECT count(*) FROM hosts")
  play undo-no-db kea_rollback -e kea_rollback_remove_reservations=true -e kea_enable_database=false
  if [[ $RC -ne 0 && $CHANGED -eq 0 ]] && grep -q 'kea_enable_database is false' "$LOG" \
    && [[ "$(show InvocationID) $(show UnitFileState) $(psql_pg -c "SELECT count(*) FROM hosts")" == "$inv enabled $hosts" ]]; then
    ok "the undo with kea_enable_database=false refuses before it stops or removes anything ($RECAP)"
  else nok "the undo with kea_enable_database=false must refuse before it stops anything" "$(play_tail)"; fi
}

# Kea's configuration on the host: each backend the role cannot serve stops the play, with the fix named,
# before anything changes. Ends with a commented configuration that matches, kept for the later runs.
kea_config_scenario() {
  local inv hosts
  inv=$(show InvocationID) hosts=$(psql_pg -c "SELECT count(*) FROM hosts")
  kea_conf() {
    in_ct mkdir -p /etc/kea
    in_ct sh -c 'cat >/etc/kea/kea-dhcp4.conf' <<EOF
// kea-dhcp4 configuration, comments and all, as Kea's parser accepts them
{
  # a hash comment
  "Dhcp4": {
    "interfaces-config": { "interfaces": [ "host0" ] },
    /* a block
       comment */
    "lease-database": $1,  // a trailing comment
    "hosts-databases": [ $2 ],
    "control-socket": { "socket-type": "unix", "socket-name": "/run/kea/kea4-ctrl-socket" }
  }
}
EOF
  }
  unchanged() { [[ $CHANGED -eq 0 && $(show InvocationID) == "$inv" && $(psql_pg -c "SELECT count(*) FROM hosts") == "$hosts" ]]; }
  local pg='{ "type": "postgresql", "name": "kea", "host": "/run/pgsock" }'
  kea_conf "$pg" "$pg"
  play kea-pg-leases kea_deploy
  if [[ $RC -ne 0 ]] && unchanged && grep -q 'set kea_db_enable_notify: true' "$LOG"; then ok "a PostgreSQL lease backend in file mode stops preflight, naming kea_db_enable_notify ($RECAP)"
  else nok "a PostgreSQL lease backend in file mode must stop preflight" "$(play_tail)"; fi
  play kea-pg-leases-event kea_deploy --check -e kea_db_enable_notify=true
  check "a PostgreSQL lease backend passes preflight in event mode ($RECAP)" test "$RC" = 0
  kea_conf '{ "type": "memfile", "name": "/var/lib/kea/kea-leases4.csv" }' '{ "type": "mysql", "name": "kea" }'
  play kea-mysql-hosts kea_deploy
  if [[ $RC -ne 0 ]] && unchanged && grep -q 'kea_lease_monitor_writer: kea-api' "$LOG"; then ok "a MySQL hosts backend with the sql writer stops preflight, naming kea_lease_monitor_writer: kea-api ($RECAP)"
  else nok "a MySQL hosts backend with the sql writer must stop preflight" "$(play_tail)"; fi
  play undo-mysql kea_rollback -e kea_rollback_remove_reservations=true
  if [[ $RC -ne 0 ]] && unchanged && [[ $(show UnitFileState) == enabled ]] && grep -q 'nothing was stopped or removed' "$LOG"; then
    ok "the undo refuses a MySQL hosts backend before it stops anything ($RECAP)"
  else nok "the undo must refuse a MySQL hosts backend before it stops anything" "$(play_tail)"; fi
  kea_conf '{ "type": "memfile", "name": "/var/lib/kea/other-leases4.csv" }' "$pg"
  play kea-other-lease-file kea_deploy
  if [[ $RC -ne 0 ]] && unchanged && grep -q 'set kea_lease_monitor_lease_file' "$LOG"; then ok "another lease file in Kea's configuration stops preflight ($RECAP)"
  else nok "another lease file in Kea's configuration must stop preflight" "$(play_tail)"; fi
  play wrong-cpu kea_deploy -e _kea_lease_monitor_binary_arch=aarch64
  if [[ $RC -ne 0 ]] && unchanged && grep -q "is x86_64, but kea-lease-monitor is built for" "$LOG"; then ok "a CPU the binary is not built for stops preflight ($RECAP)"
  else nok "a CPU the binary is not built for must stop preflight" "$(play_tail)"; fi
  kea_conf '{ "type": "memfile", "name": "/var/lib/kea/kea-leases4.csv" }' "$pg"
  play kea-matching kea_deploy
  if [[ $RC -eq 0 && $CHANGED -eq 0 ]] && grep -q 'lease-database memfile' "$LOG"; then ok "a matching (commented) Kea configuration is read and passes ($RECAP)"
  else nok "a matching Kea configuration must pass" "$(play_tail)"; fi
}

# A crash loop that hit the start limit: a rerun with nothing changed starts the unit again.
crash_loop_scenario() {
  local i
  # Each round: the main process dies (SIGKILL, a crash), then a start. After StartLimitBurst starts within
  # StartLimitIntervalSec systemd refuses the next start: the state a rerun must recover from.
  local refused="" why=""
  for i in $(seq 12); do
    in_ct systemctl kill -s KILL --kill-whom=main "$SVC" 2>/dev/null
    sleep 0.3
    if ! why=$(in_ct systemctl start "$SVC" 2>&1); then refused=$i; break; fi
  done
  # systemd 252 keeps Result=signal when the refused start comes while a restart is pending; the refusal
  # itself says "start-limit-hit" (Result) or "repeated too quickly" (systemctl, and the journal).
  local state="$(show ActiveState) $(show Result)" journal
  journal=$(in_ct journalctl -u "$SVC" -n 30 --no-pager 2>/dev/null)
  if [[ -n $refused && $state == failed* ]] && [[ $state == *start-limit-hit || "$why$journal" == *"repeated too quickly"* ]]; then
    ok "a crash loop (SIGKILL, start) hits the start limit: start refused after $refused rounds ($state)"
  else nok "a crash loop must hit the start limit (refused after ${refused:-no} rounds, $state)" "$why
$(tail -n 8 <<<"$journal")"; fi
  play crash-loop-rerun kea_deploy
  if [[ $RC -eq 0 && $FAILED -eq 0 && "$(show ActiveState)/$(show SubState)" == active/running ]]; then ok "a rerun with nothing changed starts the crash-looped unit again ($RECAP)"
  else nok "a rerun must start the crash-looped unit again" "$(play_tail)
state: $(show ActiveState)/$(show SubState) $(show Result)"; fi
}

# A second build with a real seventh migration (0006, a table), from a clone of the committed tree.
build_bumped_binary() {
  local clone=$T/bump
  git clone -q "$REPO" "$clone" && ln -s "$REPO/node_modules" "$clone/node_modules" || return 1
  printf -- '-- Test only: one more migration.\nCREATE TABLE IF NOT EXISTS kea_lm_bump_probe (id integer);\n' >"$clone/migrations/0006_bump_probe.up.sql"
  printf 'DROP TABLE IF EXISTS kea_lm_bump_probe;\n' >"$clone/migrations/0006_bump_probe.down.sql"
  python3 - "$clone/src/db/migrate.ts" <<'PY' || return 1
import sys
p = sys.argv[1]; s = open(p).read()
# Applied after the writer, undone before it.
for a, b in [("WRITER_MIGRATION, VERSION_MIGRATION]", "WRITER_MIGRATION, '0006', VERSION_MIGRATION]"),
             ("[VERSION_MIGRATION, WRITER_MIGRATION,", "[VERSION_MIGRATION, '0006', WRITER_MIGRATION,")]:
    if s.count(a) != 2: sys.exit(f"cannot add migration 0006 to {p}: {a!r} not found twice")
    s = s.replace(a, b)
open(p, "w").write(s)
PY
  (cd "$clone" && node scripts/build.mjs) >"$CT/bump-build.log" 2>&1 || { cat "$CT/bump-build.log"; return 1; }
  BUMP_BIN=$clone/dist/kea-lease-monitor
}

# Upgrade to a build with a migrations bump, keep more than one release, roll back to the previous build.
upgrade_scenario() {
  local old_rel releases inv
  if ! build_bumped_binary >"$CT/bump.log" 2>&1; then nok "build a second binary with migration 0006" "$(tail -n 20 "$CT/bump.log")"; return; fi
  ok "built a second binary with a real migration 0006 ($(du -h "$BUMP_BIN" | cut -f1))"
  # A third build (trailing bytes), so that more than one previous release is kept.
  cp "$COLL_BIN" "$CT/kea-lease-monitor.other" && echo >>"$CT/kea-lease-monitor.other"
  play upgrade-other kea_deploy -e "kea_lease_monitor_binary_src=$CT/kea-lease-monitor.other"
  [[ $RC -eq 0 ]] || nok "upgrade to a third build" "$(play_tail)"
  play downgrade-base kea_deploy
  [[ $RC -eq 0 ]] || nok "back to the collection's build" "$(play_tail)"
  old_rel=$(in_ct readlink /opt/baremetal/kea-lease-monitor/kea-lease-monitor)
  play upgrade-bump kea_deploy -e "kea_lease_monitor_binary_src=$BUMP_BIN"
  releases=$(in_ct sh -c 'ls /opt/baremetal/kea-lease-monitor/releases | wc -l')
  check "upgrade to the bumped build: migrations 6, table made, 3 releases kept, previous is the old build ($RECAP)" test \
    "$RC $(psql_pg -c 'SELECT migrations FROM kea_lm_schema') $(psql_pg -c "SELECT to_regclass('kea_lm_bump_probe') IS NOT NULL") $releases $(in_ct readlink /opt/baremetal/kea-lease-monitor/kea-lease-monitor.previous) $(show ActiveState)" \
    = "0 6 t 3 $old_rel active"
  check "the old build refuses the bumped database (what the rollback must handle)" bash -c \
    "! nsenter --target $LEADER --all -- env KEA_LM_DB_HOST=/run/pgsock KEA_LM_DB_PORT=$PGPORT KEA_LM_DB_USER=postgres $old_rel db status --json >/dev/null 2>&1"
  inv=$(show InvocationID)
  play rollback-binary-nodb kea_rollback -e kea_lease_monitor_rollback_restore_previous_binary=true -e kea_enable_database=false
  if [[ $RC -ne 0 && $CHANGED -eq 0 && $(show InvocationID) == "$inv" ]] && grep -q 'Nothing was changed' "$LOG"; then
    ok "restoring the previous build without kea_enable_database refuses before changing anything ($RECAP)"
  else nok "restoring the previous build without kea_enable_database must refuse" "$(play_tail)"; fi
  play rollback-binary kea_rollback -e kea_lease_monitor_rollback_restore_previous_binary=true
  check "rollback to the previous build reverts migration 0006 and records 5, restarted and ready ($RECAP)" test \
    "$RC $(in_ct readlink /opt/baremetal/kea-lease-monitor/kea-lease-monitor) $(psql_pg -c 'SELECT migrations FROM kea_lm_schema') $(psql_pg -c "SELECT to_regclass('kea_lm_bump_probe') IS NULL") $(show ActiveState)/$(show SubState)" \
    = "0 $old_rel 5 t active/running"
  play rollback-binary-again kea_rollback -e kea_lease_monitor_rollback_restore_previous_binary=true
  check "rollback to the previous build again changes nothing ($RECAP)" test "$RC $CHANGED" = "0 0"
}

# The role's drop-constraint path, on a database where Kea has no unique index so that `db migrate` adds
# the project's own constraint: the rollback must drop it and every object of the monitor.
drop_constraint_scenario() {
  local idx
  idx=$(psql_pg -c "SELECT indexdef FROM pg_indexes WHERE indexname = 'key_dhcp4_identifier_subnet_id'")
  psql_pg -c "DROP INDEX key_dhcp4_identifier_subnet_id" >/dev/null
  play no-kea-index kea_deploy
  check "without Kea's index, db migrate adds the project's constraint ($RECAP)" test \
    "$RC $(psql_pg -c "SELECT count(*) FROM pg_constraint WHERE conrelid = 'hosts'::regclass AND contype = 'u'")" = "0 1"
  play rollback-drop-constraint kea_rollback -e kea_lease_monitor_rollback_drop_constraint=true
  check "rollback with kea_lease_monitor_rollback_drop_constraint drops it and the monitor's objects ($RECAP)" test \
    "$RC $(psql_pg -c "SELECT count(*) FROM pg_constraint WHERE conrelid = 'hosts'::regclass AND contype = 'u'") $(psql_pg -c "SELECT to_regclass('kea_lm_schema') IS NULL") $(kea_triggers)|$(kea_functions)|$(writer_functions)" \
    = "0 0 t |$BASE_FUNCS|"
  psql_pg -c "$idx" >/dev/null
  play rollback-drop-constraint-kea-index kea_rollback -e kea_lease_monitor_rollback_drop_constraint=true
  check "with Kea's index, the same rollback keeps it ($RECAP)" test \
    "$RC $(psql_pg -c "SELECT count(*) FROM pg_indexes WHERE indexname = 'key_dhcp4_identifier_subnet_id'")" = "0 1"
}

# Debian 12 only (what they test does not depend on the release).
extra_scenario() {
  play check-notify kea_deploy --check -e kea_db_enable_notify=true
  if [[ $RC -eq 0 && $FAILED -eq 0 && $CHANGED -gt 0 && $(catalog) == "$BASE_CATALOG" ]] \
    && ! in_ct grep -q -- --use-database-events "/etc/systemd/system/$SVC"; then
    ok "check mode with kea_db_enable_notify=true reports changes and makes none ($RECAP)"
  else nok "check mode with kea_db_enable_notify=true" "$(play_tail)
catalog: $(catalog)"; fi
  play writer-no-socket kea_deploy --check -e kea_lease_monitor_writer=kea-api
  if [[ $RC -ne 0 && $CHANGED -eq 0 ]] && grep -q 'kea_lease_monitor_kea_control_socket' "$LOG"; then ok "writer kea-api without a control socket fails preflight"
  else nok "writer kea-api without a control socket must fail preflight" "$(play_tail)"; fi

  tags_scenario
  password_scenario
  kea_config_scenario
  drop_constraint_scenario

  local before
  before=$(catalog)
  play no-database-management kea_deploy -e kea_enable_database=false
  check "kea_enable_database=false leaves the database alone ($RECAP)" test "$RC $(catalog) $(show ActiveState)" = "0 $before active"

  upgrade_scenario

  play bad-password kea_deploy -e kea_lease_monitor_db_password=not-the-password
  if [[ $RC -ne 0 && $CHANGED -eq 0 ]] && grep -q 'Cannot reach PostgreSQL' "$LOG"; then ok "preflight fails clearly on a wrong database password ($RECAP)"
  else nok "preflight must fail on a wrong database password" "$(play_tail)"; fi

  # A configuration error (exit 2) fails the play with the journal ("unknown flag --no-such-flag"), and
  # is not restarted every 5 s.
  play crash kea_deploy -e '{"kea_lease_monitor_extra_args": ["--no-such-flag"], "kea_lease_monitor_verify_ready_timeout": 10}'
  if [[ $RC -ne 0 && $FAILED -gt 0 ]] && grep -q 'Last journal lines:' "$LOG" && grep -q 'unknown flag --no-such-flag' "$LOG"; then
    ok "a service that cannot start fails the play with the journal's last lines ($RECAP)"
  else nok "a service that cannot start must fail the play with the journal" "$(play_tail)"; fi
  sleep 6   # longer than RestartSec=5: a restart would have happened by now
  check "exit status 2 is not restarted: failed, NRestarts=0, status 2" test \
    "$(show ActiveState) $(show NRestarts) $(show ExecMainStatus)" = "failed 0 2"
  play recover kea_deploy
  if [[ $RC -eq 0 && $FAILED -eq 0 && $(show ActiveState) == active ]]; then ok "the next good deploy starts it again ($RECAP)"
  else nok "the next good deploy must start it again" "$(play_tail)"; fi
  crash_loop_scenario
}

# Check mode on a fresh host without python3-psycopg2 (what a new Debian host has).
check_fresh() {
  local ver deb
  ver=$(in_ct dpkg-query -W -f '${Version}' python3-psycopg2)
  in_ct dpkg --purge python3-psycopg2 >/dev/null 2>&1
  play check-fresh kea_deploy --check
  if [[ $RC -eq 0 && $FAILED -eq 0 && $OK -gt 0 && $CHANGED -gt 0 ]] && grep -q 'python3-psycopg2 is not installed' "$LOG"; then
    ok "check mode on a fresh host without python3-psycopg2 ($RECAP)"
  else nok "check mode on a fresh host without python3-psycopg2" "$(play_tail)"; fi
  local left
  left=$(in_ct sh -c "ls -d /opt/baremetal /etc/kea-lease-monitor /etc/systemd/system/$SVC /var/lib/kea/discovery 2>/dev/null; getent passwd kea-lease-monitor; python3 -c 'import psycopg2' 2>/dev/null && echo psycopg2")
  if [[ -z $left && $(catalog) == "$BASE_CATALOG" ]]; then ok "check mode changed nothing (host, packages and database)"
  else nok "check mode changed nothing" "host: $left
database: $(catalog)
before:   $BASE_CATALOG"; fi
  # The container has no network: the converge's apt gets Debian's package from the host's cache.
  deb=/var/cache/apt/archives/python3-psycopg2_${ver/:/%3a}_amd64.deb
  [[ -f $deb ]] || (cd "$T" && apt-get download -q "python3-psycopg2=$ver" >/dev/null 2>&1) && deb=${deb:-}
  [[ -f $deb ]] || deb=$(ls "$T"/python3-psycopg2_*.deb 2>/dev/null | head -1)
  local out
  if [[ ! -f $deb ]] || ! cp "$deb" "$CT/merged/root/psycopg2.deb" || ! out=$(in_ct dpkg -i /root/psycopg2.deb 2>&1); then
    fatal "reinstall python3-psycopg2 $ver in the container" "${out:-no $deb}"
  fi
  in_ct rm -f /root/psycopg2.deb
}

for SUITE in "${SUITES[@]}"; do
  started=$SECONDS
  start_suite
  if [[ -n ${KLM_SCENARIOS:-} ]]; then
    # Development: only the named scenario functions (e.g. KLM_SCENARIOS='converge upgrade_scenario').
    for f in $KLM_SCENARIOS; do "$f"; done
  else
    # Release-independent parts run on Debian 12 only, to keep the wall time down.
    [[ $SUITE == bookworm ]] && check_fresh
    core_scenario
    [[ $SUITE == bookworm ]] && extra_scenario
    undo_scenario
  fi
  leaks=$(grep -lF -e "$RT_PASS" -e "$MIG_PASS" "$CT"/*.log "$CT"/backups/* 2>/dev/null)
  if [[ -z $leaks ]]; then ok "no password in any playbook output or backup (one run at -vvv)"; else nok "password in playbook output" "$leaks"; fi
  stop_suite; left=$LEFT
  if [[ -z $left ]]; then ok "container and PostgreSQL stopped ($((SECONDS - started)) s)"; else nok "suite teardown" "$left"; fi
done
SUITE=""
