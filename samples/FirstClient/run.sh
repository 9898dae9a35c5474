#!/usr/bin/env bash
# docs/first-client.md, followed as a newcomer does, end to end: packs the libraries, starts the `cluster` command,
# copies this folder's two files into a new folder outside the repository with a NuGet.config pointing at the packages,
# exports exactly the variables and files `cluster` printed, runs the program there and checks what it printed, then
# stops the cluster with Ctrl-C (SIGINT). Exits 0 only if all of that worked; prints "first client: ok" last.
#
#   samples/FirstClient/run.sh [--no-build]      --no-build: pack and run what the last Release build made
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build_args=()
if [ "${1:-}" = "--no-build" ]; then build_args+=(--no-build); fi

work=$(mktemp -d /tmp/orleanslsn-first-client.XXXXXX)
cluster_pid=""
cleanup() {
  if [ -n "$cluster_pid" ] && kill -0 "$cluster_pid" 2>/dev/null; then
    kill -INT "$cluster_pid" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$cluster_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$cluster_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "first client: FAILED: $*" >&2; exit 1; }

echo "== dotnet pack -c Release -o $work/packages"
dotnet pack "$repo/OrleansLsn.sln" -c Release -o "$work/packages" "${build_args[@]}" > "$work/pack.log" 2>&1 ||
  { tail -n 30 "$work/pack.log"; fail "dotnet pack"; }
[ -f "$work/packages/OrleansLsn.Client.0.1.0.nupkg" ] || fail "no OrleansLsn.Client.0.1.0.nupkg"

echo "== dotnet run --project src/Silo -- cluster"
if [ ${#build_args[@]} -eq 0 ]; then
  dotnet build "$repo/src/Silo" -c Release > "$work/silo-build.log" 2>&1 || { tail -n 30 "$work/silo-build.log"; fail "building src/Silo"; }
fi
# Job control on for the launch: a background job of a script otherwise starts with SIGINT ignored, and Ctrl-C is
# what the page tells its reader to use.
set -m
dotnet "$repo/src/Silo/bin/Release/net10.0/OrleansLsn.Silo.dll" cluster > "$work/cluster.log" 2>&1 < /dev/null &
cluster_pid=$!
set +m
for _ in $(seq 1 360); do
  grep -q "Ctrl-C stops everything" "$work/cluster.log" && break
  kill -0 "$cluster_pid" 2>/dev/null || { tail -n 40 "$work/cluster.log"; fail "cluster exited before it was running"; }
  sleep 0.5
done
grep -q "Ctrl-C stops everything" "$work/cluster.log" || { tail -n 40 "$work/cluster.log"; fail "cluster was not running within 180 s"; }
sed -n '/^The cluster is running/,$p' "$work/cluster.log"

# What the page tells the reader to copy: the OrleansLsn__ lines of the first block, and the application's files.
while IFS= read -r line; do
  export "${line#  }"
done < <(sed -n '/^The cluster is running/,/^The same client certificate/p' "$work/cluster.log" | grep -E '^  OrleansLsn__[A-Za-z_]+=')
APP_PRIMARY_FILE=$(sed -n 's/^  primary (writes): *//p' "$work/cluster.log")
APP_REPLICA_FILE=$(sed -n 's/^  eu-west replica: *\([^ ]*\).*/\1/p' "$work/cluster.log")
export APP_PRIMARY_FILE APP_REPLICA_FILE
[ -n "${OrleansLsn__ClusterId:-}" ] || fail "cluster printed no OrleansLsn__ClusterId line"
[ -f "$APP_PRIMARY_FILE" ] && [ -f "$APP_REPLICA_FILE" ] || fail "cluster printed no application connection string files"

echo "== the page's project, outside the repository"
mkdir "$work/first-client"
cp "$here/FirstClient.csproj" "$here/Program.cs" "$work/first-client/"
cat > "$work/first-client/NuGet.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="orleanslsn" value="$work/packages" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="orleanslsn"><package pattern="OrleansLsn.*" /></packageSource>
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
CONFIG
# A copy of 0.1.0 cached by an earlier pack would be used instead of this one (the page says the same to its reader).
rm -rf "${NUGET_PACKAGES:-$HOME/.nuget/packages}"/orleanslsn.*/0.1.0
(cd "$work/first-client" && timeout -k 10 300 dotnet run) > "$work/first-client.log" 2>&1 || { cat "$work/first-client.log"; fail "dotnet run of the first client"; }
cat "$work/first-client.log"
grep -q "^tracker of eu-west: Ready .*read after the wait: found$" "$work/first-client.log" || fail "no 'tracker of eu-west: Ready ... found' line"
grep -q "^change received: commit " "$work/first-client.log" || fail "no 'change received' line"

echo "== Ctrl-C"
kill -INT "$cluster_pid"
for _ in $(seq 1 120); do kill -0 "$cluster_pid" 2>/dev/null || break; sleep 0.5; done
kill -0 "$cluster_pid" 2>/dev/null && fail "cluster did not stop within 60 s of Ctrl-C"
cluster_pid=""
echo "first client: ok"
