#!/usr/bin/env bash
# Each tested Kea release's own PostgreSQL schema (dhcpdb_create.pgsql, from Debian's kea-admin), cached.
#   kea-schemas.sh            one line per release: RELEASE SCHEMA_VERSION FILE   (e.g. "3.0.4 29.0 /var/cache/...")
#   kea-schemas.sh RELEASE    just the file of that release ("2.6" matches 2.6.3)
# 2.2.0 is this machine's kea-admin (Debian 12). The trixie (2.6) and forky (3.0) files come from a Kea root
# already built by test/lib/kea-rootfs.sh, else from `apt-get download kea-admin` with a private apt
# configuration (own sources list, lists and cache; the machine's apt state is untouched) and `dpkg-deb -x`.
# ISC's SQL is never committed: it lives in $KLM_CACHE_DIR (default /var/cache/kea-lease-monitor).
set -euo pipefail
CACHE=${KLM_CACHE_DIR:-/var/cache/kea-lease-monitor}
mkdir -p "$CACHE" 2>/dev/null && [[ -w $CACHE ]] || CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/kea-lease-monitor
mkdir -p "$CACHE"
SCHEMA=usr/share/kea/scripts/pgsql/dhcpdb_create.pgsql
SUITES=(bookworm trixie forky)

mirror() {
  local m
  m=$(grep -rhoE '^(URIs:|deb)[[:space:]]+\S*debian\S*' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
      | grep -v -e security -e nodesource -e google | awk '{print $2}' | head -1) || true
  [[ $m == http* ]] && echo "${m%/}" || echo http://deb.debian.org/debian
}

schema_version() { # FILE -> "major.minor" of its last schema_version update
  grep -oE "SET version = '[0-9]+', minor = '[0-9]+'" "$1" | tail -1 | sed -E "s/.*'([0-9]+)', minor = '([0-9]+)'/\1.\2/"
}

upstream() { sed -E 's/^[0-9]+://; s/-[^-]*$//; s/[+~].*$//' <<<"$1"; } # Debian version -> Kea release

fetch_apt() { # SUITE DEST: kea-admin of SUITE through a private apt configuration
  local suite=$1 dest=$2 a=$CACHE/apt-$1 keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$a/deb"
  echo "deb [signed-by=$keyring] $(mirror) $suite main" >"$a/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$a/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$a/lists"
              -o "Dir::Cache=$a/cache" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" -qq update >&2
  (cd "$a/deb" && rm -f ./*.deb && apt-get "${opts[@]}" -qq download kea-admin >&2)
  local deb; deb=$(ls "$a/deb"/kea-admin_*.deb)
  dpkg-deb -x "$deb" "$a/x"
  cp "$a/x/$SCHEMA" "$dest/dhcpdb_create.pgsql"
  upstream "$(dpkg-deb -f "$deb" Version)" >"$dest/release"
  rm -rf "$a" # the lists (tens of MB) are not needed once the schema is cached
}

provide() { # SUITE -> prints "RELEASE SCHEMA FILE"
  local suite=$1 file release
  if [[ $suite == bookworm ]]; then
    file=/$SCHEMA
    [[ -r $file ]] || { echo "kea-schemas: $file missing: apt-get install -y kea-admin" >&2; exit 1; }
    release=$(upstream "$(dpkg-query -W -f '${Version}' kea-admin)")
  else
    local dir=$CACHE/kea-schema-$suite
    if [[ ! -f $dir/.complete ]]; then
      exec 8>"$CACHE/.kea-schema-$suite.lock"; flock 8
      if [[ ! -f $dir/.complete ]]; then
        rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
        local root
        root=$(ls -d "$CACHE"/kea-rootfs-"$suite"-*/ 2>/dev/null | while read -r r; do [[ -f $r/.complete ]] && echo "${r%/}"; done | head -1) || true
        if [[ -n $root && -r $root/$SCHEMA ]]; then
          cp "$root/$SCHEMA" "$dir.tmp/dhcpdb_create.pgsql"
          upstream "$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Version}' kea-admin)" >"$dir.tmp/release"
        else
          echo "kea-schemas: fetching kea-admin of $suite (one-off)" >&2
          fetch_apt "$suite" "$dir.tmp"
        fi
        touch "$dir.tmp/.complete"; rm -rf "$dir"; mv "$dir.tmp" "$dir"
      fi
      exec 8>&-
    fi
    file=$dir/dhcpdb_create.pgsql
    release=$(cat "$dir/release")
  fi
  echo "$release $(schema_version "$file") $file"
}

if [[ $# -eq 0 ]]; then
  for s in "${SUITES[@]}"; do provide "$s"; done
else
  for s in "${SUITES[@]}"; do
    line=$(provide "$s")
    [[ ${line%% *} == "$1" || ${line%% *} == "$1".* ]] && { echo "${line##* }"; exit 0; }
  done
  echo "kea-schemas: no release $1 (have: 2.2, 2.6, 3.0)" >&2; exit 1
fi
