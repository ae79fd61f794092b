#!/usr/bin/env bash
# Build (once) a minimal Debian root holding one Kea release, for running that kea-dhcp4 (chrooted,
# inside a test network namespace) and for reading its own schema files; print the root's path.
#   kea-rootfs.sh trixie   Kea 2.6 (Debian 13)
#   kea-rootfs.sh forky    Kea 3.0 (Debian testing), plus MariaDB for the MySQL hosts backend
# Cached by test/lib/debootstrap-root.sh.
set -euo pipefail
SUITE=${1:?usage: kea-rootfs.sh trixie|forky}
BASE=kea-dhcp4-server,kea-admin,kea-common,kea-ctrl-agent,postgresql-client,ca-certificates,iproute2
case "$SUITE" in
  trixie) PKGS=$BASE; SCRIPT=trixie ;;
  forky) PKGS=$BASE,mariadb-server,mariadb-client; SCRIPT=sid ;;  # debootstrap knows forky through the sid script
  *) echo "kea-rootfs: unknown suite $SUITE (trixie or forky)" >&2; exit 2 ;;
esac
exec "$(dirname "$0")/debootstrap-root.sh" kea-rootfs "$SUITE" "$SCRIPT" "$PKGS"
