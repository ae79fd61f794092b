#!/usr/bin/env bash
# Build the collection tarball baremetal-kea_lease_monitor-<version>.tar.gz into OUTDIR (default: .).
# Stages only what ships (collection/: galaxy.yml, meta/runtime.yml, CHANGELOG.md; roles/; playbooks/*.yml; plugins/)
# and refuses to build when the staged role lacks the built executable, or carries one that differs from
# dist/kea-lease-monitor. `make collection` runs it after `make build`.
#   ansible/build-collection.sh [OUTDIR]
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
BIN=roles/kea_lease_monitor/files/kea-lease-monitor
if [[ ! -x $REPO/$BIN ]]; then
  echo "build-collection: $BIN is missing or not executable: run \`make build\` first (or \`make collection\`)" >&2
  exit 1
fi
if [[ -e $REPO/dist/kea-lease-monitor ]] && ! cmp -s "$REPO/$BIN" "$REPO/dist/kea-lease-monitor"; then
  echo "build-collection: $BIN differs from dist/kea-lease-monitor: run \`make build\`" >&2
  exit 1
fi
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/klm-collection.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
cp -a "$REPO/collection/." "$STAGE/"
mkdir -p "$STAGE/roles" "$STAGE/playbooks"
cp -a "$REPO/roles/kea_lease_monitor" "$STAGE/roles/"
cp -a "$REPO"/playbooks/*.yml "$STAGE/playbooks/"
# The inventory plugin (baremetal.kea_lease_monitor.kea_lease_monitor).
cp -a "$REPO/plugins" "$STAGE/"
# The same check against the staged copy: what is packed is what was checked.
[[ -x $STAGE/$BIN ]] || { echo "build-collection: the staged role has no executable" >&2; exit 1; }
ansible-galaxy collection build --force --output-path "$OUT" "$STAGE"
