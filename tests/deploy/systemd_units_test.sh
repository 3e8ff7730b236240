#!/usr/bin/env bash
# deploy/systemd/*.service: `systemd-analyze verify` finds nothing to say of
# either unit, in a root of its own that holds them where the packages put
# them, the programs they start, and the host's own units (After=, Wants=);
# `systemd-analyze security` rates each at most "OK" (exposure below 4.5).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
SERVER_BIN=${POLYCRUD_SERVER_BIN:?POLYCRUD_SERVER_BIN: the built polycrud-server}
failures=0
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  failures=$((failures + 1))
}

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/sbin" "$root/usr/bin" "$root/usr/lib/systemd" "$root/etc/systemd/system" \
  "$root/usr/share/polycrud-web/bin"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
# Hard links where the file system allows (no copies of large programs).
cp -l "$SERVER_BIN" "$root/usr/sbin/polycrud-server" 2>/dev/null ||
  cp "$SERVER_BIN" "$root/usr/sbin/polycrud-server"
cp -l "$(readlink -f "$(command -v node)")" "$root/usr/bin/node" 2>/dev/null ||
  cp "$(readlink -f "$(command -v node)")" "$root/usr/bin/node"
cp "$ROOT/web/bin/polycrud-web.js" "$root/usr/share/polycrud-web/bin/"
# /bin/kill (procps) for the server's ExecReload, /bin as Debian 12 has it.
ln -s usr/bin "$root/bin"
cp /usr/bin/kill "$root/usr/bin/kill"

for unit in polycrud-server.service polycrud-web.service; do
  cp "$ROOT/deploy/systemd/$unit" "$root/etc/systemd/system/"
  if ! out=$(systemd-analyze verify --root="$root" "/etc/systemd/system/$unit" 2>&1) ||
    [[ -n $out ]]; then
    fail "systemd-analyze verify $unit: ${out:-(exit status only)}"
  fi
  rating=$(systemd-analyze security --offline=true --root="$root" \
    "/etc/systemd/system/$unit" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  if [[ -z $rating ]]; then
    fail "systemd-analyze security $unit gave no rating"
  elif ! awk -v r="$rating" 'BEGIN { exit !(r < 4.5) }'; then
    fail "$unit: exposure $rating, not below 4.5"
  else
    printf 'ok: %s verified, exposure %s\n' "$unit" "$rating"
  fi
done
# The server's unit checks the configuration before it starts.
grep -q '^ExecStartPre=/usr/sbin/polycrud-server --config /etc/polycrud/server.conf --check-config$' \
  "$ROOT/deploy/systemd/polycrud-server.service" || fail "polycrud-server.service: no --check-config"
grep -q '^Type=notify$' "$ROOT/deploy/systemd/polycrud-server.service" ||
  fail "polycrud-server.service: not Type=notify"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$ROOT/deploy/systemd/polycrud-server.service" ||
  fail "polycrud-server.service: no ExecReload sending SIGHUP"
((failures == 0)) || exit 1
printf 'systemd units: all checks passed\n'
