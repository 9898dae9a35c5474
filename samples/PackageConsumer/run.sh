#!/usr/bin/env bash
# The packages as a user consumes them. Packs every OrleansLsn library into ./feed with this run's own version
# (0.1.0-local.<time>, so no cached copy of an earlier pack is ever used), builds the two applications of this folder
# from those packages only (their own NuGet.config; package references by version, no project references, the
# repository's build files not imported), checks that the client application's dependencies hold no server code,
# starts the silo application (a local PostgreSQL primary and standby, the grains), runs the client application against
# it (connect, subscribe to changes, write, wait in eu-west, read the write on eu-west's replica, receive the change)
# and stops the silo. Exits 0 only if all of that worked; prints "consumer: ok" last.
#
#   samples/PackageConsumer/run.sh [--no-build]      --no-build: pack what the last Release build of the solution made
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
pack_args=()
if [ "${1:-}" = "--no-build" ]; then pack_args+=(--no-build); fi

version="0.1.0-local.$(date -u +%Y%m%d%H%M%S)"
suffix=${version#0.1.0-}
silo_pid=""
cleanup() {
  if [ -n "$silo_pid" ] && kill -0 "$silo_pid" 2>/dev/null; then
    kill -TERM "$silo_pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$silo_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$silo_pid" 2>/dev/null || true
  fi
  # This run's packages in the global cache are never used again (the next run has its own version).
  rm -rf "${NUGET_PACKAGES:-$HOME/.nuget/packages}"/orleanslsn.*/"$version"
}
trap cleanup EXIT

fail() { echo "consumer: FAILED: $*" >&2; exit 1; }

rm -rf "$here/feed" "$here/run" "$here/Silo/bin" "$here/Silo/obj" "$here/Client/bin" "$here/Client/obj"
mkdir -p "$here/feed" "$here/run"

echo "== pack $version"
dotnet pack "$repo/OrleansLsn.sln" -c Release -o "$here/feed" -p:VersionSuffix="$suffix" "${pack_args[@]}" > "$here/run/pack.log" 2>&1 ||
  { tail -n 30 "$here/run/pack.log"; fail "dotnet pack"; }
ls "$here/feed"
for id in OrleansLsn.Interfaces OrleansLsn.Waiting OrleansLsn.Client OrleansLsn.EntityFrameworkCore OrleansLsn.AspNetCore OrleansLsn.Grains OrleansLsn.PostgresLocal; do
  [ -f "$here/feed/$id.$version.nupkg" ] || fail "no package $id.$version.nupkg"
  [ -f "$here/feed/$id.$version.snupkg" ] || fail "no symbols package $id.$version.snupkg"
done

for app in Silo Client; do
  echo "== build the $app application from the packages"
  dotnet build "$here/$app" -c Release -p:OrleansLsnVersion="$version" > "$here/run/build-$app.log" 2>&1 ||
    { grep -E "error|warn" "$here/run/build-$app.log" | sort -u | head -30; fail "building the $app application from the packages"; }
done

echo "== the client application's dependencies"
assets="$here/Client/obj/project.assets.json"
grep -q "\"OrleansLsn.Client/$version\"" "$assets" || fail "the client application did not restore OrleansLsn.Client $version"
for server in OrleansLsn.Grains OrleansLsn.PostgresLocal Microsoft.Orleans.Server; do
  if grep -q "\"$server/" "$assets"; then fail "the client application's dependencies include $server (server code)"; fi
done
if ls "$here/Client/bin/Release/net10.0/" | grep -q "OrleansLsn.Grains"; then fail "OrleansLsn.Grains.dll was copied into the client application"; fi
echo "   no OrleansLsn.Grains, OrleansLsn.PostgresLocal or Microsoft.Orleans.Server among $(grep -c '"type": "package"' "$assets") packages"

echo "== start the silo application"
dotnet "$here/Silo/bin/Release/net10.0/PackageConsumer.Silo.dll" "$here/run" > "$here/run/silo.log" 2>&1 &
silo_pid=$!
for _ in $(seq 1 240); do
  [ -f "$here/run/connection.json" ] && break
  kill -0 "$silo_pid" 2>/dev/null || { tail -n 40 "$here/run/silo.log"; fail "the silo application exited before it was active"; }
  sleep 0.5
done
[ -f "$here/run/connection.json" ] || { tail -n 40 "$here/run/silo.log"; fail "the silo application was not active within 120 s"; }
cat "$here/run/silo.log"

echo "== run the client application"
if ! timeout -k 10 120 dotnet "$here/Client/bin/Release/net10.0/PackageConsumer.Client.dll" "$here/run"; then
  echo "-- silo log"; tail -n 40 "$here/run/silo.log"
  fail "the client application"
fi

kill -TERM "$silo_pid"
for _ in $(seq 1 60); do kill -0 "$silo_pid" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$silo_pid" 2>/dev/null; then fail "the silo application did not stop within 30 s of SIGTERM"; fi
wait "$silo_pid" || fail "the silo application exited with $? after SIGTERM"
silo_pid=""
echo "consumer: ok"
