#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for building, testing and demoing: only the missing
# Debian packages (a no-op when all are present), then the npm packages (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  postgresql-15            # throwaway clusters for tests, demo and benchmarks
  kea-admin kea-common     # kea-admin db-init (the real schema), perfdhcp
  kea-dhcp4-server         # end-to-end suite
  udhcpc iproute2          # a real DHCP client; network namespaces
  nftables                 # make faults: half-open TCP (packets dropped in a private namespace)
  binutils                 # strip, for a smaller single-file executable
  curl                     # the demo reads the metrics endpoint
  time                     # GNU time: peak RSS of one-shot commands in bench/fleet.ts
  prometheus               # promtool: `make test` checks and unit-tests alerts/*.rules.yml
  ansible ansible-core ansible-lint python3-psycopg2   # the Ansible bundle and its tests
  systemd systemd-container debootstrap                # a booted systemd in systemd-nspawn for the role test
  python3-testinfra python3-pytest                     # the role test's verify step (testinfra, as Molecule uses)
  python3-requests python3-gevent openssl             # DMTF's Redfish-Mockup-Server in the e2e Redfish section
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -q -o DPkg::Lock::Timeout=600
  # policy-rc.d keeps the packaged services (kea, postgresql, prometheus) from starting: tests start
  # their own. Only while we install, and only if the machine has no policy of its own.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
fi

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
