#!/usr/bin/env bash
# Build (once) a minimal Debian root holding one Kea release, for running that kea-dhcp4 (chrooted,
# inside a test network namespace) and for reading its own schema files; print the root's path.
#   kea-rootfs.sh trixie   Kea 2.6 (Debian 13)
#   kea-rootfs.sh forky    Kea 3.0 (Debian testing), plus MariaDB for the MySQL hosts backend
# Cached under $KLM_CACHE_DIR (default /var/cache/kea-lease-monitor), keyed by suite and package list.
# The machine's own apt sources are never touched: debootstrap fetches from the same mirror.
set -euo pipefail
SUITE=${1:?usage: kea-rootfs.sh trixie|forky}
CACHE=${KLM_CACHE_DIR:-/var/cache/kea-lease-monitor}
BASE=kea-dhcp4-server,kea-admin,kea-common,kea-ctrl-agent,postgresql-client,ca-certificates,iproute2
case "$SUITE" in
  trixie) PKGS=$BASE; SCRIPT=trixie ;;
  forky) PKGS=$BASE,mariadb-server,mariadb-client; SCRIPT=sid ;;  # debootstrap knows forky through the sid script
  *) echo "kea-rootfs: unknown suite $SUITE (trixie or forky)" >&2; exit 2 ;;
esac
mirror() {
  local m
  m=$(grep -rhoE '^(URIs:|deb)[[:space:]]+\S*debian\S*' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
      | grep -v -e security -e nodesource -e google | awk '{print $2}' | head -1) || true
  [[ $m == http* ]] && echo "${m%/}" || echo http://deb.debian.org/debian
}
key=$(printf '%s %s v1' "$SUITE" "$PKGS" | sha256sum | cut -c1-12)
root="$CACHE/kea-rootfs-$SUITE-$key"
mkdir -p "$CACHE"
exec 9>"$CACHE/.kea-rootfs-$SUITE.lock"
flock 9
if [[ ! -f "$root/.complete" ]]; then
  command -v debootstrap >/dev/null || { echo "kea-rootfs: debootstrap missing: apt-get install -y debootstrap" >&2; exit 1; }
  script=/usr/share/debootstrap/scripts/$SCRIPT
  [[ -e $script ]] || { echo "kea-rootfs: debootstrap has no script $script" >&2; exit 1; }
  tmp="$root.tmp.$$"
  rm -rf "$tmp"
  log="$CACHE/kea-rootfs-$SUITE.log"
  echo "kea-rootfs: debootstrap $SUITE from $(mirror) into $root (one-off, a few minutes)" >&2
  if ! debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$tmp" "$(mirror)" "$script" >"$log" 2>&1; then
    tail -n 30 "$log" >&2; rm -rf "$tmp"
    echo "kea-rootfs: debootstrap failed (log: $log)" >&2; exit 1
  fi
  rm -f "$tmp/var/cache/apt/archives/"*.deb
  touch "$tmp/.complete"
  mv "$tmp" "$root"
  for old in "$CACHE"/kea-rootfs-"$SUITE"-*; do [[ $old == "$root" ]] || rm -rf "$old"; done
fi
echo "$root"
