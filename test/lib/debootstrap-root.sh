#!/usr/bin/env bash
# Build (once) a minimal Debian root with debootstrap, cached, and print its path. Shared by
# test/lib/kea-rootfs.sh (Kea releases) and test/ansible/rootfs.sh (systemd containers).
#   debootstrap-root.sh NAME SUITE SCRIPT PACKAGES [SETUP]
# NAME prefixes the cache entry, SCRIPT is debootstrap's script for SUITE, PACKAGES a comma list, and
# SETUP (optional) a command run with the new root as its argument before the root is marked complete.
# Cached under $KLM_CACHE_DIR (default /var/cache/kea-lease-monitor), keyed by suite and package list;
# roots built for an older list are removed. The machine's own apt sources are never touched:
# debootstrap fetches from the mirror apt is configured with (no other network is reachable here).
set -euo pipefail
NAME=${1:?usage: debootstrap-root.sh NAME SUITE SCRIPT PACKAGES [SETUP]}
SUITE=${2:?}; SCRIPT=${3:?}; PKGS=${4:?}; SETUP=${5:-}
CACHE=${KLM_CACHE_DIR:-/var/cache/kea-lease-monitor}
mirror() {
  local m
  m=$(grep -rhoE '^(URIs:|deb)[[:space:]]+\S*debian\S*' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
      | grep -v -e security -e nodesource -e google | awk '{print $2}' | head -1) || true
  [[ $m == http* ]] && echo "${m%/}" || echo http://deb.debian.org/debian
}
key=$(printf '%s %s v1' "$SUITE" "$PKGS" | sha256sum | cut -c1-12)
root="$CACHE/$NAME-$SUITE-$key"
mkdir -p "$CACHE"
exec 9>"$CACHE/.$NAME-$SUITE.lock"
flock 9
if [[ ! -f "$root/.complete" ]]; then
  command -v debootstrap >/dev/null || { echo "$NAME: debootstrap missing: apt-get install -y debootstrap" >&2; exit 1; }
  script=/usr/share/debootstrap/scripts/$SCRIPT
  [[ -e $script ]] || { echo "$NAME: debootstrap has no script $script" >&2; exit 1; }
  tmp="$root.tmp.$$"
  rm -rf "$root" "$tmp"
  log="$CACHE/$NAME-$SUITE.log"
  echo "$NAME: debootstrap $SUITE from $(mirror) into $root (one-off, a few minutes)" >&2
  if ! debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$tmp" "$(mirror)" "$script" >"$log" 2>&1; then
    tail -n 30 "$log" >&2; rm -rf "$tmp"
    echo "$NAME: debootstrap failed (log: $log)" >&2; exit 1
  fi
  [[ -z $SETUP ]] || $SETUP "$tmp"
  rm -f "$tmp/var/cache/apt/archives/"*.deb
  touch "$tmp/.complete"
  mv "$tmp" "$root"
  for old in "$CACHE/$NAME-$SUITE"-*; do [[ $old == "$root" ]] || rm -rf "$old"; done
fi
echo "$root"
