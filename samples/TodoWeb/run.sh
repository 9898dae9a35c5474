#!/usr/bin/env bash
# The to-do sample's one command, checked end to end: `dotnet run --project samples/TodoWeb` on the embedded default
# (local PostgreSQL, replicas in eu-west with a 500 ms replay delay and us-east, four silos), then over real HTTP:
# a new list, an item added through the form (antiforgery token and cookie included), the list after the redirect must
# show the item and say the read came from eu-west's replica (after a wait, or at once); without the token cookie the
# list must say the request carried none. SIGTERM (what Ctrl-C does; a background job ignores SIGINT) must stop
# everything with exit 0.
# Ends with "todo sample: ok" or "todo sample: FAILED ...". --no-build uses the existing Release build.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=(); [ "${1:-}" = "--no-build" ] && build=(--no-build)
work=$(mktemp -d)
log="$work/sample.log"
pid=""
fail() {
  echo "todo sample: FAILED: $1"
  [ -f "$log" ] && tail -n 30 "$log"
  [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
  exit 1
}

setsid dotnet run -c Release "${build[@]}" --project samples/TodoWeb -- --port 0 > "$log" 2>&1 < /dev/null &
pid=$!
url=""
for _ in $(seq 1 180); do
  url=$(grep -o 'The to-do sample is at http://127.0.0.1:[0-9]*' "$log" | grep -o 'http://.*' || true)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || fail "the sample exited before it printed its URL"
  sleep 1
done
[ -n "$url" ] || fail "no URL within 180 s"
echo "sample at $url"

jar="$work/cookies"
list=$(curl -sf -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$url/") || fail "GET / failed"
case "$list" in "$url"/lists/*) ;; *) fail "GET / did not redirect to a list (got '$list')" ;; esac
page=$(curl -sf -c "$jar" -b "$jar" "$list") || fail "GET the new list failed"
echo "$page" | grep -q 'data-outcome="no_token"' || fail "a first visit did not read without a token"
form_token=$(echo "$page" | grep -o 'name="__RequestVerificationToken" value="[^"]*"' | sed 's/.*value="//; s/"$//')
[ -n "$form_token" ] || fail "the page has no antiforgery field"

item="milk $RANDOM$RANDOM"
code=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' --data-urlencode "text=$item" --data-urlencode "__RequestVerificationToken=$form_token" "$list/items")
[ "$code" = "303" ] || fail "adding an item answered $code, not 303"
grep -q 'orleanslsn-rw' "$jar" || fail "the write set no causal token cookie"
page=$(curl -sf -c "$jar" -b "$jar" "$list") || fail "GET the list after the write failed"
echo "$page" | grep -q ">$item<" || fail "the list after the redirect does not show '$item'"
outcome=$(echo "$page" | grep -o 'data-outcome="[a-z_]*"')
case "$outcome" in
  'data-outcome="replayed_after_wait"'|'data-outcome="replayed"') ;;
  *) fail "the read after the write was $outcome, not from eu-west's replica" ;;
esac
echo "$page" | grep -o '<p id="read"[^<]*' | sed 's/<p id="read"[^>]*>/  after the write: /'

grep -v 'orleanslsn-rw' "$jar" > "$work/no-token"
page=$(curl -sf -b "$work/no-token" "$list") || fail "GET the list without the token failed"
echo "$page" | grep -q 'data-outcome="no_token"' || fail "without the cookie the read did not say it carried no token"
echo "$page" | grep -o '<p id="read"[^<]*' | sed 's/<p id="read"[^>]*>/  without the cookie: /'

kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
for _ in $(seq 1 90); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
kill -0 "$pid" 2>/dev/null && { kill -9 -- "-$pid" 2>/dev/null; pid=""; fail "the sample did not stop within 90 s of SIGTERM"; }
wait "$pid"; rc=$?
pid=""
[ "$rc" -eq 0 ] || fail "the sample exited with $rc after SIGTERM"
rm -rf "$work"
echo "todo sample: ok"
