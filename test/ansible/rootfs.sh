#!/usr/bin/env bash
# Build (once) a minimal Debian root with systemd for the Ansible test container; print its path.
#   rootfs.sh [bookworm|trixie]   Debian 12 (default) or Debian 13
# Cached under $KLM_CACHE_DIR (default /var/cache/kea-lease-monitor), keyed by suite and package list, so
# later runs reuse it. The machine's own apt sources are never touched: debootstrap fetches from the same mirror.
set -euo pipefail
SUITE=${1:-bookworm}
case "$SUITE" in
  bookworm | trixie) ;;
  *) echo "rootfs: unknown suite $SUITE (bookworm or trixie)" >&2; exit 2 ;;
esac
CACHE=${KLM_CACHE_DIR:-/var/cache/kea-lease-monitor}
PKGS=systemd,systemd-sysv,dbus,python3,python3-apt,python3-psycopg2,libstdc++6,ca-certificates
# The mirror apt is configured with (no other network is reachable here).
mirror() {
  local m
  m=$(grep -rhoE '^(URIs:|deb)[[:space:]]+\S*debian\S*' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
      | grep -v -e security -e nodesource -e google | awk '{print $2}' | head -1) || true
  [[ $m == http* ]] && echo "${m%/}" || echo http://deb.debian.org/debian
}
key=$(printf '%s %s v1' "$SUITE" "$PKGS" | sha256sum | cut -c1-12)
root="$CACHE/rootfs-$SUITE-$key"
mkdir -p "$CACHE"
exec 9>"$CACHE/.rootfs-$SUITE.lock"
flock 9
if [[ ! -f "$root/.complete" ]]; then
  command -v debootstrap >/dev/null || { echo "rootfs: debootstrap missing: apt-get install -y debootstrap" >&2; exit 1; }
  [[ -e /usr/share/debootstrap/scripts/$SUITE ]] || { echo "rootfs: debootstrap has no script for $SUITE" >&2; exit 1; }
  tmp="$root.tmp.$$"
  rm -rf "$root" "$tmp"
  log="$CACHE/debootstrap-$SUITE.log"
  echo "rootfs: debootstrap $SUITE from $(mirror) into $root (one-off, a few minutes)" >&2
  if ! debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$tmp" "$(mirror)" >"$log" 2>&1; then
    tail -n 30 "$log" >&2; rm -rf "$tmp"
    echo "rootfs: debootstrap failed (log: $log)" >&2; exit 1
  fi
  # No getty on the console, no root password prompt, and a stable machine-id.
  chroot "$tmp" systemctl mask console-getty.service getty@tty1.service systemd-networkd-wait-online.service \
    systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service >/dev/null 2>&1 || true
  echo klm-test >"$tmp/etc/hostname"
  rm -f "$tmp/var/cache/apt/archives/"*.deb
  touch "$tmp/.complete"
  mv "$tmp" "$root"
  # Roots of this suite built for an older package list are never used again.
  for old in "$CACHE"/rootfs-"$SUITE"-*; do [[ $old == "$root" ]] || rm -rf "$old"; done
fi
echo "$root"
