#!/usr/bin/env bash
# tests/packaging/install_test.sh DIST CACHE: the packages of DIST
# (./polycrud package) in a clean Debian 12 root. The root is made once with
# debootstrap from Debian's archive (minbase) and kept as a tarball in CACHE
# with the .debs apt fetched; each run unpacks a fresh copy. In it:
#   apt-get install ./polycrud-*.deb   (Depends resolved from the archive)
#   the system users, the configuration's owner and mode, the units
#   polycrud-server --check-config as the user polycrud, with secret files
#   against a MariaDB and a Redis of this test (stack.sh, on the loopback,
#   which the root shares):
#   polycrud-server --migrate-only, then the server itself
#   polycrud-cli of polycrud-tools: create, get, update, list, delete over Thrift
#   a reload by SIGHUP (the root's /bin/kill) with a new token hash; /readyz
# Needs root (chroot, mount). Traffic: the archive (first run and new
# Depends), and the loopback.
set -euo pipefail
readonly PY=/usr/bin/python3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
readonly STACK=$here/../../deploy/local/stack.sh
readonly MIRROR=http://deb.debian.org/debian
dist=$(cd "${1:?usage: install_test.sh DIST CACHE}" && pwd -P)
cache=${2:?usage: install_test.sh DIST CACHE}
mkdir -p "$cache/archives/partial"
cache=$(cd "$cache" && pwd -P)

pass() { echo "ok: $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
((EUID == 0)) || fail "needs root (chroot and mount)"
compgen -G "$dist/polycrud-*.deb" >/dev/null || fail "no packages in $dist (./polycrud package)"

base=$cache/bookworm-minbase.tar
if [[ ! -f $base ]]; then
  echo "making the Debian 12 root once (debootstrap --variant=minbase bookworm, $MIRROR)"
  staging=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$staging" "$MIRROR" >"$cache/debootstrap.log" 2>&1 ||
    fail "debootstrap failed (log: $cache/debootstrap.log)"
  tar -C "$staging" -cf "$base.tmp" .
  rm -rf "$staging"
  mv "$base.tmp" "$base"
fi

work=$(mktemp -d)
root=$work/root
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  "$STACK" stop-all "$work/stack" >/dev/null 2>&1 || true
  for m in "$root/var/cache/apt/archives" "$root/proc"; do
    mountpoint -q "$m" && umount "$m"
  done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$root"
tar -C "$root" -xf "$base"
chmod 0755 "$root"  # the tarball keeps the 0700 of the folder debootstrap filled
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --bind "$cache/archives" "$root/var/cache/apt/archives"
cp "$dist"/polycrud-*.deb "$root/tmp/"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

echo "installing $(cd "$dist" && ls polycrud-*.deb | paste -sd' ') into the root"
in_root apt-get update -q >"$work/apt.log" 2>&1 || fail "apt-get update: $(tail -5 "$work/apt.log")"
# shellcheck disable=SC2016  # expanded in the root
in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /tmp/polycrud-*.deb' \
  >>"$work/apt.log" 2>&1 || fail "apt-get install: $(tail -20 "$work/apt.log")"
pass "apt-get install of the three packages into a clean Debian 12 root"

for user in polycrud polycrud-web; do
  in_root getent passwd "$user" >/dev/null || fail "no system user $user"
done
# Owners as the root's own user database names them.
[[ $(in_root stat -c '%U:%G %a' /etc/polycrud/server.conf) == "root:polycrud 640" ]] ||
  fail "server.conf: $(in_root stat -c '%U:%G %a' /etc/polycrud/server.conf)"
[[ $(in_root stat -c '%U:%G %a' /etc/polycrud/web.env) == "root:polycrud-web 640" ]] ||
  fail "web.env: $(in_root stat -c '%U:%G %a' /etc/polycrud/web.env)"
for f in /lib/systemd/system/polycrud-server.service /lib/systemd/system/polycrud-web.service \
  /usr/sbin/polycrud-server /usr/bin/polycrud-cli /usr/bin/polycrud-seed \
  /usr/share/polycrud-web/bin/polycrud-web.js /usr/share/doc/polycrud-server/copyright \
  /usr/share/man/man8/polycrud-server.8.gz /usr/share/man/man1/polycrud-cli.1.gz \
  /usr/share/man/man1/polycrud-seed.1.gz; do
  [[ -e $root$f ]] || fail "$f is not installed"
done
in_root node -e 'require("/usr/share/polycrud-web/node_modules/express")' ||
  fail "the console's modules do not load with the root's nodejs"
pass "users polycrud and polycrud-web, configuration root:<user> 0640, units, programs, modules"

# A MariaDB and a Redis of the test's own (outside the root; the root shares
# the loopback).
db_port=$(free_port)
rd_port=$(free_port)
"$STACK" mariadb start "$work/stack/mariadb" "$db_port" >/dev/null
printf 'pkg-db-password\n' | "$STACK" mariadb bootstrap "$work/stack/mariadb" polycrud polycrud >/dev/null
"$STACK" redis start "$work/stack/redis" "$rd_port" >/dev/null
thrift_port=$(free_port)
rest_port=$(free_port)
token=pkg-admin-token
umask 027
printf 'pkg-db-password\n' >"$root/etc/polycrud/mysql.password"
cat "$work/stack/redis/server.password" >"$root/etc/polycrud/redis.password"
printf '%s\n' "$(printf %s "$token" | sha256sum | cut -d' ' -f1)" >"$root/etc/polycrud/admin-tokens.sha256"
in_root chown root:polycrud /etc/polycrud/mysql.password /etc/polycrud/redis.password \
  /etc/polycrud/admin-tokens.sha256
sed -i -e "s/^mysql-port = .*/mysql-port = $db_port/" -e "s/^redis-port = .*/redis-port = $rd_port/" \
  -e "s|^# mysql-password-file = .*|mysql-password-file = /etc/polycrud/mysql.password|" \
  -e "s/^# redis-user = .*/redis-user = polycrud/" \
  -e "s|^# redis-password-file = .*|redis-password-file = /etc/polycrud/redis.password|" \
  -e "s/^# protocols = .*/protocols = thrift,rest/" "$root/etc/polycrud/server.conf"
printf 'thrift-port = %s\nrest-port = %s\n' "$thrift_port" "$rest_port" >>"$root/etc/polycrud/server.conf"
umask 022

check=$(chroot --userspec=polycrud:polycrud "$root" /usr/sbin/polycrud-server \
  --config /etc/polycrud/server.conf --check-config 2>&1) || fail "--check-config: $check"
[[ $check == *"configuration OK"* && $check == *"mysql-password = (hidden)"* ]] ||
  fail "--check-config said: $check"
pass "--check-config as the user polycrud reads the configuration and its secret files"

migrate=$(chroot --userspec=polycrud:polycrud "$root" /usr/sbin/polycrud-server \
  --config /etc/polycrud/server.conf --migrate-only 2>&1) || fail "--migrate-only: $migrate"
pass "--migrate-only applied the migrations and exited"

chroot --userspec=polycrud:polycrud "$root" /usr/sbin/polycrud-server \
  --config /etc/polycrud/server.conf >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', $thrift_port), 0.2)" \
    2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited: $(tail -20 "$work/server.log")"
  sleep 0.2
done
cli() { in_root polycrud-cli --host 127.0.0.1 --port "$thrift_port" --token "$token" --json "$@"; }
created=$(cli create --username pkguser --email pkg@example.com --full-name 'Packaged Zoë') ||
  fail "polycrud-cli create: $created"
id=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$created")
[[ $(cli get "$id") == *'"full_name": "Packaged Zoë"'* ]] || fail "get: $(cli get "$id")"
cli update "$id" --full-name 'Packaged Again' >/dev/null || fail "update"
[[ $(cli get "$id") == *'"version": 2'* ]] || fail "get after update: $(cli get "$id")"
[[ $(cli list) == *pkguser* ]] || fail "list: $(cli list)"
cli delete "$id" >/dev/null || fail "delete"
if cli get "$id" >/dev/null 2>&1; then fail "get after delete found the user"; fi
pass "polycrud-cli from polycrud-tools: create, get, update, list, delete against the packaged server"

# systemctl reload's ExecReload, with the /bin/kill the package depends on:
# a new token hash takes over.
printf '%s\n' "$(printf %s rotated-token | sha256sum | cut -d' ' -f1)" \
  >"$root/etc/polycrud/admin-tokens.sha256.new"
mv "$root/etc/polycrud/admin-tokens.sha256.new" "$root/etc/polycrud/admin-tokens.sha256"
in_root chown root:polycrud /etc/polycrud/admin-tokens.sha256
in_root /bin/kill -HUP "$server_pid" || fail "/bin/kill -HUP in the root"
for _ in $(seq 1 50); do
  grep -q 'reloaded:' "$work/server.log" && break
  sleep 0.2
done
grep -q 'reloaded:' "$work/server.log" || fail "no reload: $(tail -5 "$work/server.log")"
if cli list >/dev/null 2>&1; then fail "the old token still works after the reload"; fi
token=rotated-token
cli list >/dev/null || fail "the new token does not work after the reload"
pass "a reload (SIGHUP through the root's /bin/kill) put the new token hash in force"

status=$(curl -s "http://127.0.0.1:$rest_port/readyz") || true
[[ $status == *'"status":"ok"'* ]] || fail "/readyz: $status"
pass "the packaged server is ready (/readyz) on MariaDB and Redis"
echo "packaging: all checks passed"
