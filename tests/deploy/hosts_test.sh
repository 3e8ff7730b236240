#!/usr/bin/env bash
# deploy/cluster/hosts.sh: hosts as network namespaces on a private switch.
# Two hosts reach each other over HTTP (python3's http.server in one, curl in
# the other), no host has a default route, the machine's own namespace gets
# no address of theirs, added latency shows in the connect time, and down
# removes every namespace. Traffic goes only between the namespaces made here.
set -euo pipefail

readonly HOSTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../deploy/cluster" && pwd)/hosts.sh
readonly PREFIX=pt$$
readonly PY=/usr/bin/python3
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
cleanup() {
  [[ -n ${server:-} ]] && kill "$server" 2>/dev/null
  "$HOSTS" down "$PREFIX"
}
trap cleanup EXIT

"$HOSTS" up "$PREFIX" 10.77.0 app cache db >/dev/null
[[ $("$HOSTS" list "$PREFIX" | wc -l) -eq 4 ]] || fail "expected 4 namespaces (3 hosts and the switch)"

# An HTTP server on cache (10.77.0.2), stopped by this test within 60 s at most.
timeout 60 "$HOSTS" exec "$PREFIX" cache "$PY" -m http.server --bind 10.77.0.2 8000 \
  >/dev/null 2>&1 &
server=$!
reached=0
for _ in $(seq 1 100); do
  if "$HOSTS" exec "$PREFIX" app curl -s -o /dev/null --max-time 1 http://10.77.0.2:8000/; then
    reached=1
    break
  fi
  sleep 0.1
done
((reached)) || fail "app did not reach cache's HTTP server"

for host in app cache db; do
  if [[ -n $("$HOSTS" exec "$PREFIX" "$host" ip route show default) ]]; then
    fail "$host has a default route"
  fi
done
if ip -4 addr show | grep -q "10\.77\.0\."; then
  fail "the machine's own namespace has an address of the hosts' subnet"
fi

connect_s() {
  "$HOSTS" exec "$PREFIX" app curl -s -o /dev/null --max-time 5 -w '%{time_connect}' \
    http://10.77.0.2:8000/
}
if latency_error=$("$HOSTS" latency "$PREFIX" app 50ms 2>&1); then
  slow=$(connect_s)
  "$HOSTS" latency "$PREFIX" app off
  fast=$(connect_s)
  "$PY" -c "import sys; sys.exit(0 if float('$slow') >= 0.045 else 1)" ||
    fail "50 ms of latency on app: connect took $slow s"
  "$PY" -c "import sys; sys.exit(0 if float('$fast') < 0.045 else 1)" ||
    fail "latency off: connect still took $fast s"
else
  # A kernel without sch_netem: the command must say so, and change nothing.
  [[ $latency_error == *"no netem"* ]] || fail "latency failed without saying why: $latency_error"
  fast=$(connect_s)
  "$PY" -c "import sys; sys.exit(0 if float('$fast') < 0.045 else 1)" ||
    fail "a refused latency still slowed app: connect took $fast s"
  echo "note: this kernel has no netem; latency was refused with its reason"
fi

kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
server=
"$HOSTS" down "$PREFIX"
[[ -z $("$HOSTS" list "$PREFIX") ]] || fail "down left namespaces behind"
if "$HOSTS" up "$PREFIX" 10.77.0 'Bad_Name' >/dev/null 2>&1; then
  fail "a bad host name was accepted"
fi
[[ -z $("$HOSTS" list "$PREFIX") ]] || fail "a failed up left namespaces behind"

if ((failures > 0)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "hosts.sh: namespaces, reachability, isolation, latency and cleanup as expected"
