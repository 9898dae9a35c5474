#!/usr/bin/env bash
# docker-compose.yml end to end: build the images, `up`, wait until every service is healthy (or has completed), run
# tests/OrleansLsn.ComposeTests (a plain Orleans client on the host: read-your-writes in both regions, a change stream
# through the ReplicationGrain, `docker kill` of the silo hosting one region's tracker), and `down -v` always, also
# when something fails or the run is interrupted. A service that does not become healthy is named, with its last log
# lines. The exit code is the test run's (non-zero on any failure).
#   deploy/compose-e2e.sh                          official images (public registries)
#   deploy/compose-e2e.sh deploy/local-images.env  the local stand-ins (deploy/local-images.sh)
# Environment: COMPOSE_E2E_PROJECT (default orleanslsn-e2e), COMPOSE_E2E_TIMEOUT (seconds to become healthy, 300).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

env_file="${1:-}"
project="${COMPOSE_E2E_PROJECT:-orleanslsn-e2e}"
health_timeout="${COMPOSE_E2E_TIMEOUT:-300}"
say() { echo "compose-e2e: $*"; }

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  say "neither 'docker compose' nor docker-compose is installed"; exit 1
fi
docker info >/dev/null 2>&1 || { say "no Docker engine answers ('docker info' failed)"; exit 1; }
compose+=(-p "$project" -f docker-compose.yml)
if [ -n "$env_file" ]; then
  [ -f "$env_file" ] || { say "env file $env_file does not exist (deploy/local-images.sh writes deploy/local-images.env)"; exit 1; }
  compose+=(--env-file "$env_file")
  # docker-compose 1.29 reads --env-file for the file's interpolation only; the test client needs the same values.
  set -a; . "$env_file"; set +a
fi

work="$(mktemp -d /tmp/orleanslsn-compose-e2e.XXXXXX)"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  say "down -v (project $project)"
  "${compose[@]}" down -v --remove-orphans >"$work/down.log" 2>&1 || { cat "$work/down.log"; rc=1; }
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# What a killed earlier run of this project left behind.
"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1

say "building images (${compose[*]})"
t=$SECONDS
if ! "${compose[@]}" build >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log"; say "build failed"; exit 1
fi
say "images built in $((SECONDS - t)) s"

t=$SECONDS
# `up -d` itself waits for depends_on conditions and fails when one is not met; the loop below checks every service.
"${compose[@]}" up -d >"$work/up.log" 2>&1
up_rc=$?

# Every service must be healthy (healthcheck) or have exited 0 (one-shots: certs, demo), within the deadline.
services=$("${compose[@]}" config --services)
deadline=$((SECONDS + health_timeout))
while :; do
  pending=()
  failed=()
  for s in $services; do
    id=$("${compose[@]}" ps -a -q "$s" 2>/dev/null | head -1)
    if [ -z "$id" ]; then
      pending+=("$s:not created"); continue
    fi
    state=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")
    read -r status code health <<<"$state"
    case "$status/$health" in
      running/healthy) ;;
      exited/*) [ "$code" = 0 ] || failed+=("$s: exited with $code") ;;
      running/unhealthy) failed+=("$s: unhealthy") ;;
      *) pending+=("$s:$status/$health") ;;
    esac
  done
  if [ ${#failed[@]} -gt 0 ] || { [ ${#pending[@]} -gt 0 ] && [ $SECONDS -ge $deadline ]; }; then
    [ $up_rc -eq 0 ] || tail -n 20 "$work/up.log"
    for f in "${failed[@]}" "${pending[@]}"; do
      s="${f%%:*}"
      say "service $s is not healthy: ${f#*:}; its last log lines:"
      "${compose[@]}" logs --no-color --tail 40 "$s" 2>&1 | sed 's/^/    /'
    done
    exit 1
  fi
  [ ${#pending[@]} -eq 0 ] && break
  sleep 2
done
say "all services healthy or completed in $((SECONDS - t)) s"
say "the demo client's output:"
"${compose[@]}" logs --no-color demo 2>&1 | sed 's/^/    /'

certs_id=$("${compose[@]}" ps -a -q certs | head -1)
docker cp "$certs_id:/certs" "$work/certs" >/dev/null || { say "could not copy the certificates out of the certs service"; exit 1; }

say "tests/OrleansLsn.ComposeTests: a plain Orleans client on the host"
ORLEANSLSN_COMPOSE_PROJECT="$project" ORLEANSLSN_COMPOSE_CERTS="$work/certs" \
  timeout 600 dotnet test tests/OrleansLsn.ComposeTests -c Release 2>&1 | tee "$work/test.log"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
  for s in $services; do
    say "last log lines of $s:"
    "${compose[@]}" logs --no-color --tail 15 "$s" 2>&1 | sed 's/^/    /'
  done
fi
exit "$rc"
