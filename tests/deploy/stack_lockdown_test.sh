#!/usr/bin/env bash
# The local stack is locked down (deploy/local/stack.sh): a private MariaDB
# and Redis started here, in a scratch directory, on free ports, and probed
# as a hostile local user would. MariaDB: root only through the Unix socket
# (TCP refused, also for a data directory created before the lock-down),
# no anonymous user, server-side files confined to DIR/files, the
# application user without FILE, bootstrap's password taken from stdin, the
# redo log and binary log synced on commit.
# Redis: no default user, the server's user limited to user:* keys and the
# cache protocol's commands, secrets only in 0600 files (the ACL holds
# hashes), and the noeviction policy under a maxmemory limit.
# RabbitMQ: no guest, the application's user without tags and only on its
# vhost, every socket of the node and of its epmd on the loopback, secrets in
# 0600 files, a password change through the environment, and a stop that
# leaves no process behind.
set -euo pipefail

readonly PY=/usr/bin/python3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly STACK=$here/../../deploy/local/stack.sh

# shellcheck source=../support/settings.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/settings.sh"
pass() { echo "ok: $*"; }

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

dir=$(setting POLYCRUD_TEST_SCRATCH)/stack-lockdown
rm -rf "$dir"
mkdir -p "$dir"
cleanup() {
  "$STACK" stop-all "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

# ------------------------------------------------------------- MariaDB ----

db=$dir/mariadb
db_port=$(free_port)
"$STACK" mariadb start "$db" "$db_port" >/dev/null
as_root() { mariadb --defaults-file="$db/my.cnf" --batch --skip-column-names -e "$1"; }

accounts=$(as_root "SELECT CONCAT(User, '@', Host, ':', plugin) FROM mysql.user ORDER BY 1")
[[ $accounts == $'mariadb.sys@localhost:mysql_native_password\nroot@localhost:unix_socket' ]] ||
  fail "accounts of a new data directory: $accounts"
pass "root exists only as root@localhost, through the Unix socket"

if mariadb -h127.0.0.1 -P"$db_port" -uroot --connect-timeout=5 -e 'SELECT 1' >/dev/null 2>&1; then
  fail "root logged in over TCP without a password"
fi
if MYSQL_PWD=anything mariadb -h127.0.0.1 -P"$db_port" -uroot --connect-timeout=5 \
  -e 'SELECT 1' >/dev/null 2>&1; then
  fail "root logged in over TCP with a password"
fi
pass "root over TCP is refused"

[[ $(as_root 'SELECT @@secure_file_priv') == "$db/files/" ]] ||
  fail "secure_file_priv is $(as_root 'SELECT @@secure_file_priv')"
[[ $(stat -c %a "$db/files") == 700 ]] || fail "$db/files is not mode 0700"
pass "server-side files confined to $db/files"

# A commit is visible to other sessions only once it would survive a crash:
# redo log and binary log synced on commit (see mariadb_binlog_config).
durability=$(as_root 'SELECT CONCAT_WS(" ", @@innodb_flush_log_at_trx_commit, @@log_bin, @@sync_binlog)')
[[ $durability == '1 ON 1' ]] ||
  fail "innodb_flush_log_at_trx_commit, log_bin, sync_binlog: $durability (want 1 ON 1)"
pass "redo log and binary log synced on every commit"

# Bootstrap takes the password on stdin; a fourth argument is refused.
if "$STACK" mariadb bootstrap "$db" lockdown_db app 'pw-on-the-command-line' >/dev/null 2>&1; then
  fail "bootstrap accepted a password argument"
fi
printf 'secret-from-stdin\n' | "$STACK" mariadb bootstrap "$db" lockdown_db app >/dev/null
MYSQL_PWD=secret-from-stdin mariadb -h127.0.0.1 -P"$db_port" -uapp lockdown_db \
  -e 'CREATE TABLE t (x INT); INSERT INTO t VALUES (1)' || fail "the app user cannot use its database"
if MYSQL_PWD=secret-from-stdin mariadb -h127.0.0.1 -P"$db_port" -uapp lockdown_db \
  -e "SELECT x INTO OUTFILE '$db/files/out.txt' FROM t" >/dev/null 2>&1; then
  fail "the app user wrote a server-side file"
fi
if MYSQL_PWD=secret-from-stdin mariadb -h127.0.0.1 -P"$db_port" -uapp mysql \
  -e 'SELECT 1 FROM user' >/dev/null 2>&1; then
  fail "the app user read mysql.user"
fi
pass "bootstrap reads the password from stdin; the app user has neither FILE nor mysql.*"

# A data directory from before the lock-down (root on TCP without a password,
# an anonymous user) is brought to it on the next start.
as_root "CREATE USER root@'127.0.0.1'; GRANT ALL ON *.* TO root@'127.0.0.1';
         CREATE USER ''@'localhost'; ALTER USER root@localhost IDENTIFIED VIA mysql_native_password"
"$STACK" mariadb stop "$db" >/dev/null
"$STACK" mariadb start "$db" "$db_port" >/dev/null
accounts=$(as_root "SELECT CONCAT(User, '@', Host, ':', plugin) FROM mysql.user WHERE User IN ('root', '')")
[[ $accounts == 'root@localhost:unix_socket' ]] || fail "after restart the accounts are: $accounts"
if mariadb -h127.0.0.1 -P"$db_port" -uroot --connect-timeout=5 -e 'SELECT 1' >/dev/null 2>&1; then
  fail "root logged in over TCP after the restart"
fi
pass "an older data directory is locked down on start"

# ---------------------------------------------------------------- Redis ----

rd=$dir/redis
rd_port=$(free_port)
POLYCRUD_REDIS_PASSWORD=server-pw POLYCRUD_REDIS_ADMIN_PASSWORD=admin-pw \
  "$STACK" redis start "$rd" "$rd_port" >/dev/null
for f in users.acl server.password admin.password; do
  [[ $(stat -c %a "$rd/$f") == 600 ]] || fail "$rd/$f is not mode 0600"
done
if grep -q -e server-pw -e admin-pw "$rd/users.acl"; then
  fail "users.acl holds a password in clear"
fi
pass "secrets in 0600 files, the ACL holds only hashes"

cli() {
  local user=$1 password=$2
  shift 2
  REDISCLI_AUTH=$password redis-cli --no-auth-warning --user "$user" -p "$rd_port" "$@" 2>&1
}
expect() {
  local want=$1 got
  shift
  got=$("$@")
  [[ $got == "$want"* ]] || fail "$*: expected '$want...', got '$got'"
}

expect NOAUTH redis-cli -p "$rd_port" GET user:1
expect 'AUTH failed: WRONGPASS' cli polycrud wrong GET user:1
expect OK cli polycrud server-pw SET user:1 'U|1|' PX 60000
expect 'U|1|' cli polycrud server-pw GET user:1
expect NOPERM cli polycrud server-pw SET other:1 x
expect NOPERM cli polycrud server-pw FLUSHALL
expect NOPERM cli polycrud server-pw CONFIG SET maxmemory-policy allkeys-lru
expect NOPERM cli polycrud server-pw KEYS '*'
expect NOPERM cli polycrud server-pw ACL LIST
expect ERR cli polycrud server-pw EVAL "return redis.call('SET', 'other:2', 'x')" 0
expect 'U|1|' cli admin admin-pw GET user:1
pass "no default user; the server's user runs only the cache protocol on user:* keys"

[[ $(cli admin admin-pw CONFIG GET maxmemory-policy | sed -n 2p) == noeviction ]] ||
  fail "the eviction policy is not noeviction"
[[ $(cli admin admin-pw CONFIG GET maxmemory | sed -n 2p) == 3221225472 ]] ||
  fail "maxmemory is not 3gb by default"
pass "noeviction under a 3gb maxmemory"

# The password files outlive a restart; changing one through the environment
# takes effect on the next start.
"$STACK" redis stop "$rd" >/dev/null
"$STACK" redis start "$rd" "$rd_port" >/dev/null
expect PONG cli polycrud server-pw PING
POLYCRUD_REDIS_PASSWORD=server-pw-2 "$STACK" redis stop "$rd" >/dev/null
POLYCRUD_REDIS_PASSWORD=server-pw-2 "$STACK" redis start "$rd" "$rd_port" >/dev/null
expect 'AUTH failed: WRONGPASS' cli polycrud server-pw PING
expect PONG cli polycrud server-pw-2 PING
pass "passwords persist across restarts and can be changed"

# ------------------------------------------------------------- RabbitMQ ----

mq=$dir/rabbitmq
mq_port=$(free_port)
# The distribution and epmd ports default to PORT+1 and PORT+2, which need
# not be free next to a port the kernel picked.
mq_env=(POLYCRUD_RABBITMQ_DIST_PORT="$(free_port)" POLYCRUD_RABBITMQ_EPMD_PORT="$(free_port)"
  POLYCRUD_AMQP_VHOST=lockdown_vhost)
mq_start() { env "${mq_env[@]}" "$@" "$STACK" rabbitmq start "$mq" "$mq_port" >/dev/null; }
mq_stop() { "$STACK" rabbitmq stop "$mq" >/dev/null; }
ctl() { "$STACK" rabbitmq ctl "$mq" --quiet "$@" </dev/null; }
authenticates() { ctl authenticate_user polycrud "$1" >/dev/null 2>&1; }

mq_start POLYCRUD_AMQP_PASSWORD=amqp-pw
beam=$(cat "$mq/rabbitmq.pid")
epmd=$(cat "$mq/epmd.pid")
[[ $(stat -c %a "$mq/server.password") == 600 ]] || fail "$mq/server.password is not mode 0600"
[[ $(stat -c %a "$mq/rabbitmq.conf") == 600 ]] || fail "$mq/rabbitmq.conf is not mode 0600"
[[ $(stat -c %a "$mq/.erlang.cookie") == 400 ]] || fail "$mq/.erlang.cookie is not mode 0400"
grep -q amqp-pw "$mq/rabbitmq.conf" && fail "rabbitmq.conf holds the password"
pass "RabbitMQ secrets in 0600 files, the cookie 0400"

users=$(ctl list_users --no-table-headers)
[[ $users == $'polycrud\t[]' ]] || fail "RabbitMQ users: $users (want only polycrud, no tags)"
authenticates amqp-pw || fail "polycrud cannot authenticate with its password"
authenticates wrong && fail "polycrud authenticated with a wrong password"
authenticates guest && fail "something authenticated with guest's password"
perms=$(ctl list_user_permissions --no-table-headers polycrud)
[[ $perms == $'lockdown_vhost\t.*\t.*\t.*' ]] || fail "permissions of polycrud: $perms"
pass "no guest; polycrud, without tags, on its vhost only, with its password only"

# Every listening socket of the node (AMQP, distribution: no management or
# other plugin) and of its epmd is on the loopback. epmd always adds ::1.
sockets() { ss -Hltnp | awk -v p="pid=$1," 'index($0, p) {print $4}' | sort | tr '\n' ' '; }
instance() { sed -n "s/^$1=//p" "$mq/rabbitmq.instance"; }
want=$(printf '127.0.0.1:%s\n' "$(instance AMQP_PORT)" "$(instance DIST_PORT)" | sort | tr '\n' ' ')
[[ $(sockets "$beam") == "$want" ]] || fail "the node listens on: $(sockets "$beam") (want $want)"
epmd_port=$(instance EPMD_PORT)
[[ $(sockets "$epmd") == "127.0.0.1:$epmd_port [::1]:$epmd_port " ]] ||
  fail "epmd listens on: $(sockets "$epmd") (want 127.0.0.1:$epmd_port and [::1]:$epmd_port)"
pass "AMQP, the distribution and epmd listen on the loopback only"

# Start again while it runs: left alone.
mq_start
[[ $(cat "$mq/rabbitmq.pid") == "$beam" ]] || fail "a second start replaced the running node"
# A node brought out of line (guest back, a grant on another vhost) is
# locked down again on the next start; the password file outlives it.
ctl add_user guest guest >/dev/null
ctl add_vhost other >/dev/null
ctl set_permissions -p other polycrud '.*' '.*' '.*' >/dev/null
mq_stop
mq_start
[[ $(ctl list_users --no-table-headers) == $'polycrud\t[]' ]] || fail "guest survived a restart"
[[ $(ctl list_user_permissions --no-table-headers polycrud) == $'lockdown_vhost\t.*\t.*\t.*' ]] ||
  fail "the permissions on vhost other survived a restart"
authenticates amqp-pw || fail "the password did not survive a restart"
pass "a restart locks the node down again and keeps the password"

mq_stop
mq_start POLYCRUD_AMQP_PASSWORD=amqp-pw-2
authenticates amqp-pw && fail "the old password still works after a change"
authenticates amqp-pw-2 || fail "the new password does not work"
[[ $(head -n 1 "$mq/server.password") == amqp-pw-2 ]] || fail "server.password was not updated"
pass "a password changed through the environment takes effect on the next start"

# Stop leaves nothing of DIR running: the node, its epmd, the VM's helpers.
beam=$(cat "$mq/rabbitmq.pid")
epmd=$(cat "$mq/epmd.pid")
mq_stop
alive() { [[ -e /proc/$1 && $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }
alive "$beam" && fail "the node (pid $beam) still runs after stop"
alive "$epmd" && fail "epmd (pid $epmd) still runs after stop"
left=
for _ in $(seq 50); do
  left=$(for p in /proc/[0-9]*; do
    [[ $(readlink "$p/cwd" 2>/dev/null) == "$mq" ]] && alive "${p#/proc/}" && echo "${p#/proc/}"
  done || true)
  [[ -z $left ]] && break
  sleep 0.1
done
[[ -z $left ]] || fail "processes left in $mq after stop: $left"
[[ ! -e $mq/rabbitmq.pid && ! -e $mq/epmd.pid ]] || fail "pid files left after stop"
"$STACK" rabbitmq stop "$mq" >/dev/null || fail "a second stop failed"
pass "stop leaves no process of $mq (node and epmd stopped by pid)"

echo "PASS: stack lock-down"
