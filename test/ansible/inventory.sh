#!/usr/bin/env bash
# The inventory plugin (plugins/inventory/kea_lease_monitor.py) through `ansible-inventory --list/--graph`
# against running monitors: the built binary in file mode on a throwaway PostgreSQL with the real Kea schema,
# the collection built with `ansible-galaxy collection build` and installed into a temp collections path
# (no ansible.cfg, no ANSIBLE_CONFIG). Tests: test/ansible/inventory/test_inventory.py.
#   test/ansible/inventory.sh [pytest args]   (`make test-ansible` builds the binary first)
# Env: KLM_COLLECTIONS_PATH reuses a collections path where this tree's collection is installed;
# KLM_KEEP=1 keeps the temp dir. Exit status non-zero on any failure.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ -x $REPO/dist/kea-lease-monitor ]] || { echo "inventory.sh: $REPO/dist/kea-lease-monitor missing: run make build" >&2; exit 1; }
for cmd in ansible-inventory ansible-galaxy ansible-doc; do
  command -v "$cmd" >/dev/null || { echo "inventory.sh: $cmd missing: apt-get install -y ansible-core" >&2; exit 1; }
done
/usr/bin/python3 -c 'import pytest, yaml' 2>/dev/null || { echo "inventory.sh: apt-get install -y python3-pytest python3-yaml" >&2; exit 1; }
cd "$REPO/test/ansible/inventory"
exec /usr/bin/python3 -m pytest -p no:cacheprovider -v --tb=short "$@"
