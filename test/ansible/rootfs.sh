#!/usr/bin/env bash
# Build (once) a minimal Debian root with systemd for the Ansible test container; print its path.
#   rootfs.sh [bookworm|trixie]   Debian 12 (default) or Debian 13
# Cached by test/lib/debootstrap-root.sh.
set -euo pipefail
SUITE=${1:-bookworm}
case "$SUITE" in
  bookworm | trixie) ;;
  *) echo "rootfs: unknown suite $SUITE (bookworm or trixie)" >&2; exit 2 ;;
esac
PKGS=systemd,systemd-sysv,dbus,python3,python3-apt,python3-psycopg2,libstdc++6,ca-certificates
# No getty on the console, no root password prompt, and a stable machine-id.
container_setup() {
  chroot "$1" systemctl mask console-getty.service getty@tty1.service systemd-networkd-wait-online.service \
    systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service >/dev/null 2>&1 || true
  echo klm-test >"$1/etc/hostname"
}
export -f container_setup
exec "$(dirname "$0")/../lib/debootstrap-root.sh" rootfs "$SUITE" "$SUITE" "$PKGS" container_setup
