#!/usr/bin/env bash
# Builds local stand-ins for the images this project takes from registries, without pulling anything:
#   orleanslsn-local/debian:bookworm        a Debian root file system from debootstrap (with PostgreSQL 15)
#   orleanslsn-local/postgres:15            the official postgres image's contract (POSTGRES_USER/_PASSWORD/_DB, extra
#                                           `postgres -c ...` arguments, /docker-entrypoint-initdb.d, PGDATA)
#   orleanslsn-local/postgres:16|17|18      only with --pg N: the same contract on deploy/postgres-binaries.sh's binaries
#   orleanslsn-local/dotnet-sdk:10.0        this machine's .NET SDK (stand-in for mcr.microsoft.com/dotnet/sdk:10.0)
#   orleanslsn-local/dotnet-aspnet:10.0     this machine's .NET + ASP.NET Core runtimes (for .../dotnet/aspnet:10.0)
# and writes deploy/local-images.env with the variables docker-compose.yml and the test fixture read:
#   docker compose --env-file deploy/local-images.env up
#
# It installs nothing: it needs a running Docker engine, debootstrap and the dotnet SDK. The Debian mirror is read
# from this machine's apt sources each time and is written into no file of the project. Images already built from the
# same inputs are reused (each carries a label with the hash of its inputs), so a second run takes seconds.
# Options: --force rebuilds every image; --print-env prints the env file's contents after building;
# --pg N (16, 17 or 18; repeatable) builds only the base and orleanslsn-local/postgres:N, from the server binaries of
# deploy/postgres-binaries.sh N (fetched on this machine, copied into the image); the test fixture's Docker backend
# uses that image with ORLEANSLSN_PG_VERSION=N. --pg 15 builds Debian's postgres image alone. Neither writes the env file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
images="$here/images"
env_file="$here/local-images.env"
suite=bookworm
pg_major=15
label=org.orleanslsn.local-image.inputs

base_image="orleanslsn-local/debian:$suite"
postgres_image="orleanslsn-local/postgres:$pg_major"
sdk_image="orleanslsn-local/dotnet-sdk:10.0"
runtime_image="orleanslsn-local/dotnet-aspnet:10.0"
# Packages of the root file system: PostgreSQL for the postgres image, what .NET needs at run time for the others.
packages="postgresql-$pg_major,ca-certificates,libicu72,libssl3,zlib1g,tzdata,libgssapi-krb5-2"

say() { echo "local-images: $*"; }
fail() { echo "local-images: error: $*" >&2; exit 1; }

force=0
print_env=0
pg_versions=()
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --print-env) print_env=1 ;;
    --pg) [ $# -ge 2 ] || { echo "local-images: --pg needs a major version (15, 16, 17 or 18)" >&2; exit 2; }
          shift; pg_versions+=("$1") ;;
    --pg=*) pg_versions+=("${1#--pg=}") ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "local-images: unknown argument '$1' (known: --force, --print-env, --pg N)" >&2; exit 2 ;;
  esac
  shift
done
for v in "${pg_versions[@]}"; do
  case "$v" in
    15|16|17|18) ;;
    *) echo "local-images: --pg '$v': known versions are 15 (Debian's), 16, 17, 18 (deploy/postgres-binaries.sh)" >&2; exit 2 ;;
  esac
done

# --- prerequisites -------------------------------------------------------------------------------------------------
command -v docker >/dev/null 2>&1 || fail "the docker CLI is missing (Debian: apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || fail "no Docker engine answers ('docker info' failed); start dockerd first"
command -v debootstrap >/dev/null 2>&1 || fail "debootstrap is missing (Debian: apt-get install -y debootstrap)"
command -v dotnet >/dev/null 2>&1 || fail "the dotnet SDK is not on PATH"
dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
[ -d "$dotnet_root/sdk" ] && [ -d "$dotnet_root/shared/Microsoft.AspNetCore.App" ] ||
  fail "$dotnet_root (where dotnet lives) has no sdk/ or no ASP.NET Core shared framework"
sdk_version="$(dotnet --version)"
case "$sdk_version" in 10.*) ;; *) fail "the local SDK images need a .NET 10 SDK; dotnet --version says $sdk_version" ;; esac
netcore_version="$(ls "$dotnet_root/shared/Microsoft.NETCore.App" | sort -V | grep '^10\.' | tail -1)"
aspnet_version="$(ls "$dotnet_root/shared/Microsoft.AspNetCore.App" | sort -V | grep '^10\.' | tail -1)"
[ -n "$netcore_version" ] && [ -n "$aspnet_version" ] || fail "no 10.x runtime under $dotnet_root/shared"
# The machine's CA bundle (OpenSSL's default file on Debian), for restores inside builds.
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca_bundle" ] || fail "$ca_bundle is missing (Debian: apt-get install -y ca-certificates)"

# The first Debian mirror of this machine's apt sources that serves the suite's main component (one-line and deb822).
find_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i+1) == s) { for (j = i + 2; j <= NF; j++) if ($j == "main") { print $i; exit } } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$suite" 'BEGIN { RS = ""; FS = "\n" }
      { uris = ""; ok = 0; main = 0; deb = 1
        for (k = 1; k <= NF; k++) {
          if ($k ~ /^URIs:/) { uris = $k; sub(/^URIs:[ \t]*/, "", uris) }
          if ($k ~ /^Suites:/) { n = split(substr($k, 8), a, /[ \t]+/); for (m = 1; m <= n; m++) if (a[m] == s) ok = 1 }
          if ($k ~ /^Components:/ && $k ~ /(^|[ \t])main([ \t]|$)/) main = 1
          if ($k ~ /^Types:/ && $k !~ /(^|[ \t])deb([ \t]|$)/) deb = 0
          if ($k ~ /^Enabled:[ \t]*no/) deb = 0 }
        if (ok && main && deb && uris != "") { split(uris, u, /[ \t]+/); print u[1]; exit } }' "$f"
  done
}

# sha256 of the given strings and files, so an image is rebuilt exactly when what it is made from changed.
inputs_hash() { { for x in "$@"; do if [ -f "$x" ]; then cat "$x"; else printf '%s\n' "$x"; fi; done; } | sha256sum | cut -c1-16; }
image_inputs() { docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$1" 2>/dev/null || true; }
image_id() { docker image inspect --format '{{ .Id }}' "$1"; }

need_build() {
  # need_build IMAGE HASH: 0 (build) unless IMAGE exists with the same inputs hash.
  local have
  have="$(image_inputs "$1")"
  if [ "$force" = 0 ] && [ "$have" = "$2" ]; then
    say "$1: up to date (inputs $2), reused"
    return 1
  fi
  if [ -n "$have" ]; then say "$1: inputs changed ($have -> $2), rebuilding"; else say "$1: not built yet, building"; fi
  return 0
}

work="$(mktemp -d /var/tmp/orleanslsn-local-images.XXXXXX)"
cleanup() {
  # debootstrap leaves /proc and /sys of the root file system mounted when it fails half way.
  for m in proc sys dev/pts dev; do mountpoint -q "$work/rootfs/$m" 2>/dev/null && umount -l "$work/rootfs/$m" || true; done
  rm -rf "$work"
}
trap cleanup EXIT
started=$SECONDS

# --- 1. the Debian base: debootstrap, docker import ------------------------------------------------------------------
base_hash="$(inputs_hash "$suite" "$packages" minbase)"
if need_build "$base_image" "$base_hash"; then
  mirror="$(find_mirror | head -1)"
  [ -n "$mirror" ] || fail "no apt source of this machine serves '$suite main' (looked in /etc/apt/sources.list*)"
  say "debootstrap --variant=minbase $suite from this machine's mirror (about a minute; the mirror is not recorded)"
  t=$SECONDS
  if ! debootstrap --variant=minbase --include="$packages" "$suite" "$work/rootfs" "$mirror" > "$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    fail "debootstrap failed (log above)"
  fi
  # Nothing of the build machine's apt state or caches goes into the image.
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/debootstrap"
  say "debootstrap done in $((SECONDS - t)) s ($(du -sh "$work/rootfs" | cut -f1)); importing as $base_image"
  tar -C "$work/rootfs" -c . | docker import \
    --change "LABEL $label=$base_hash" \
    --change "LABEL org.opencontainers.image.description=\"local build: Debian $suite minbase by debootstrap (OrleansLsn deploy/local-images.sh)\"" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$base_image" >/dev/null
  rm -rf "$work/rootfs"
fi
base_id="$(image_id "$base_image")"

build() {
  # build IMAGE HASH DOCKERFILE CONTEXT [--build-arg X=Y...]: a plain docker build on the local base (never pulls).
  local image="$1" hash="$2" dockerfile="$3" context="$4" t=$SECONDS
  shift 4
  if docker build --quiet --pull=false -f "$dockerfile" --build-arg "BASE_IMAGE=$base_image" "$@" \
      --build-arg "NUGET_CERT_REVOCATION_MODE=${NUGET_CERT_REVOCATION_MODE:-}" \
      --label "$label=$hash" --label "org.opencontainers.image.description=local build (OrleansLsn deploy/local-images.sh)" \
      -t "$image" "$context" > "$work/build.log" 2>&1; then
    say "$image: built in $((SECONDS - t)) s"
  else
    cat "$work/build.log" >&2
    fail "docker build of $image failed (output above)"
  fi
}

# --- 2. postgres ------------------------------------------------------------------------------------------------------
build_debian_postgres() {
  local pg_hash
  pg_hash="$(inputs_hash "$base_id" "$images/postgres/Dockerfile" "$images/postgres/docker-entrypoint.sh")"
  if need_build "$postgres_image" "$pg_hash"; then
    build "$postgres_image" "$pg_hash" "$images/postgres/Dockerfile" "$images/postgres"
  fi
}

# build_npm_postgres N: orleanslsn-local/postgres:N from deploy/postgres-binaries.sh N (fetched or reused on this machine).
build_npm_postgres() {
  local major="$1" image="orleanslsn-local/postgres:$1" bin dir hash ctx
  bin="$(bash "$here/postgres-binaries.sh" --bin "$major")" || fail "deploy/postgres-binaries.sh $major failed"
  dir="$(dirname "$bin")"
  [ -x "$dir/bin/postgres" ] && [ -d "$dir/lib" ] && [ -d "$dir/share" ] || fail "$dir has no bin/postgres, lib/ or share/"
  # The full version (the cache folder's name) stands for the binaries: a new pinned version rebuilds the image.
  hash="$(inputs_hash "$base_id" "$images/postgres-npm/Dockerfile" "$images/postgres/docker-entrypoint.sh" "$major" "$(basename "$dir")")"
  if need_build "$image" "$hash"; then
    ctx="$work/postgres-$major"
    mkdir -p "$ctx/postgres"
    cp -a "$dir/bin" "$dir/lib" "$dir/share" "$ctx/postgres/"
    cp "$images/postgres/docker-entrypoint.sh" "$ctx/"
    say "$image: from $dir ($("$dir/bin/postgres" --version), $(du -sh "$ctx/postgres" | cut -f1))"
    build "$image" "$hash" "$images/postgres-npm/Dockerfile" "$ctx" --build-arg "PG_MAJOR=$major"
    rm -rf "$ctx"
  fi
}

if [ ${#pg_versions[@]} -gt 0 ]; then
  for v in "${pg_versions[@]}"; do
    if [ "$v" = "$pg_major" ]; then build_debian_postgres; else build_npm_postgres "$v"; fi
  done
  say "done in $((SECONDS - started)) s (--pg: no other image built, $env_file not written)"
  exit 0
fi
build_debian_postgres

# --- 3. the .NET SDK (the machine's own, as found above) --------------------------------------------------------------
sdk_hash="$(inputs_hash "$base_id" "$images/dotnet-sdk/Dockerfile" "$dotnet_root" "$sdk_version" "$netcore_version" "$aspnet_version" "nuget-revocation=${NUGET_CERT_REVOCATION_MODE:-}" "$ca_bundle")"
if need_build "$sdk_image" "$sdk_hash"; then
  say "$sdk_image: from $dotnet_root (SDK $sdk_version, $(du -sh "$dotnet_root" | cut -f1)), with this machine's CA bundle"
  ctx="$work/sdk"
  mkdir -p "$ctx"
  # Hard links where the file system allows, a copy otherwise.
  cp -al "$dotnet_root" "$ctx/dotnet" 2>/dev/null || { rm -rf "$ctx/dotnet"; cp -a "$dotnet_root" "$ctx/dotnet"; }
  cp "$ca_bundle" "$ctx/ca-certificates.crt"
  build "$sdk_image" "$sdk_hash" "$images/dotnet-sdk/Dockerfile" "$ctx"
fi

# --- 4. the ASP.NET Core runtime: the host and the two shared frameworks, nothing of the SDK ------------------------
runtime_hash="$(inputs_hash "$base_id" "$images/dotnet-runtime/Dockerfile" "$dotnet_root" "$netcore_version" "$aspnet_version")"
if need_build "$runtime_image" "$runtime_hash"; then
  ctx="$work/runtime"
  mkdir -p "$ctx/shared/Microsoft.NETCore.App" "$ctx/shared/Microsoft.AspNetCore.App"
  cp -a "$dotnet_root/dotnet" "$dotnet_root/host" "$dotnet_root/LICENSE.txt" "$ctx/"
  cp -a "$dotnet_root/shared/Microsoft.NETCore.App/$netcore_version" "$ctx/shared/Microsoft.NETCore.App/"
  cp -a "$dotnet_root/shared/Microsoft.AspNetCore.App/$aspnet_version" "$ctx/shared/Microsoft.AspNetCore.App/"
  say "$runtime_image: .NET $netcore_version + ASP.NET Core $aspnet_version from $dotnet_root"
  build "$runtime_image" "$runtime_hash" "$images/dotnet-runtime/Dockerfile" "$ctx"
fi

# --- 5. the variables compose and the tests read ----------------------------------------------------------------------
cat > "$env_file" <<EOF
# Written by deploy/local-images.sh: local builds standing in for the official images (no registry needed).
# docker compose --env-file deploy/local-images.env up   (the test fixture reads this file too)
POSTGRES_IMAGE=$postgres_image
DOTNET_SDK_IMAGE=$sdk_image
DOTNET_RUNTIME_IMAGE=$runtime_image
ORLEANSLSN_TEST_POSTGRES_IMAGE=$postgres_image
EOF
say "wrote $env_file; done in $((SECONDS - started)) s"
if [ "$print_env" = 1 ]; then cat "$env_file"; fi
