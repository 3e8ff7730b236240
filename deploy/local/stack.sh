#!/usr/bin/env bash
# Private MariaDB, Redis and RabbitMQ instances for polycrud: one directory
# per instance, loopback only, started without systemd and stopped by the PID
# recorded in that directory. A system-wide instance (/run/mysqld, the
# distribution's redis-server or rabbitmq-server and its epmd) is never
# touched, and nothing is ever stopped by process name.
#
# Used by `./polycrud up/down` and by the test suite (CTest fixtures and the
# C++ integration tests), so the command-line interface below is stable.
set -euo pipefail

readonly PROG=stack.sh
readonly REDIS_START_TIMEOUT_S=10
readonly REDIS_STOP_TIMEOUT_S=10
readonly MARIADB_START_TIMEOUT_S=30
readonly MARIADB_STOP_TIMEOUT_S=30
readonly GALERA_START_TIMEOUT_S=90
readonly RABBITMQ_START_TIMEOUT_S=60
readonly RABBITMQ_STOP_TIMEOUT_S=30
readonly EPMD_START_TIMEOUT_S=5
readonly LOCK_TIMEOUT_S=120
readonly BIND=${POLYCRUD_BIND_ADDRESS:-127.0.0.1}
readonly GALERA_PROVIDER=/usr/lib/galera/libgalera_smm.so
# Debian's /usr/sbin/rabbitmq* wrappers switch to the rabbitmq user; these
# run as the caller, with every path pointing into the instance's DIR.
readonly RABBITMQ_BIN=/usr/lib/rabbitmq/bin
readonly AMQP_USER=polycrud

usage() {
  cat <<'EOF'
Usage: stack.sh COMMAND ...

Starts and stops private MariaDB, Redis and RabbitMQ instances, each in its
own directory, listening on 127.0.0.1 only. Every start is idempotent (an
instance already running in DIR is left alone) and every stop is harmless
when nothing runs. Processes are found through the pid files in DIR only.

Redis (a pure cache: no RDB snapshots, no AOF; ACL users, no default user):
  stack.sh redis start DIR PORT     start redis-server in DIR (created if needed)
                                    and wait until it answers PING (10 s)
  stack.sh redis stop DIR           SIGTERM by pid, SIGKILL after 10 s
  stack.sh redis status DIR         print its state; exit 0 running, 3 stopped

MariaDB:
  stack.sh mariadb start DIR PORT   initialise DIR/data on first use, write
                                    DIR/my.cnf, start mariadbd and wait until it
                                    answers (30 s)
  stack.sh mariadb stop DIR         SIGTERM by pid, SIGKILL after 30 s
  stack.sh mariadb status DIR       print its state; exit 0 running, 3 stopped
  stack.sh mariadb bootstrap DIR DATABASE USER < PASSWORD_FILE
                                    create DATABASE (utf8mb4) and USER@127.0.0.1
                                    and USER@localhost with the password read
                                    from the first line of stdin (an existing
                                    user gets the new password), grant ALL on
                                    DATABASE.* only; idempotent

RabbitMQ (no plugins; one user on its own vhost, no guest):
  stack.sh rabbitmq start DIR PORT  start an epmd of its own and rabbitmq-server
                                    in DIR (created if needed), AMQP on PORT,
                                    wait until the node serves (60 s), then
                                    lock it down (below)
  stack.sh rabbitmq stop DIR        SIGTERM to the node by pid, SIGKILL after
                                    30 s, then its epmd by pid
  stack.sh rabbitmq status DIR      print its state; exit 0 running, 3 stopped
  stack.sh rabbitmq ctl DIR ARGS... rabbitmqctl ARGS against DIR's node (its
                                    cookie, node name and epmd), e.g.
                                    list_queues -p polycrud

Any directory:
  stack.sh status DIR               what runs in DIR and its direct
                                    subdirectories (pid and port, or "stopped")
  stack.sh stop-all DIR             stop every instance found below DIR (by pid)

Files in a Redis DIR:   redis.pid redis.port redis.log users.acl
                        server.password admin.password (mode 0600)
Files in a MariaDB DIR: my.cnf data/ files/ mysqld.pid mysqld.sock mysqld.log
                        install.log (a Galera node also: galera.port)
Files in a RabbitMQ DIR: rabbitmq.pid epmd.pid rabbitmq.instance (node name,
                        address, ports) rabbitmq.conf (mode 0600)
                        enabled_plugins rabbitmq-env.conf log/ mnesia/
                        rabbitmq.out epmd.log .erlang.cookie (mode 0400; DIR
                        is the node's HOME) server.password (mode 0600)

Locked down: Redis has no default user. Its ACL (DIR/users.acl, mode 0600,
passwords stored as SHA-256) has two users: "polycrud" (the server: keys
user:* only; GET MGET SET DEL EVAL EVALSHA SCRIPT LOAD|EXISTS PING, on a
cluster node also CLUSTER SLOTS, ASKING and FLUSHALL) and "admin"
(everything). Their passwords are DIR/server.password and DIR/admin.password,
created with random secrets on first start, or taken from the environment
variables below when set. Connect as admin:
  REDISCLI_AUTH=$(cat DIR/admin.password) redis-cli --user admin -p PORT
MariaDB's root exists only as root@localhost, authenticated by the Unix
socket (the OS user root), so nothing on TCP can log in as root:
  mariadb --defaults-file=DIR/my.cnf
The server reads and writes files only in DIR/files (secure_file_priv).
RabbitMQ has no guest user (a new node never makes it, an older one loses it
on start) and no plugin, so no management listener. The user "polycrud" has
no tags and may configure, write and read on its vhost only; its password is
DIR/server.password, random on first start or taken from the environment.
The AMQP port, the node's Erlang distribution (PORT+1) and its own epmd
(PORT+2) listen on the bind address only (epmd adds the loopback addresses
by itself); rabbitmqctl needs the node's cookie, so go through
"stack.sh rabbitmq ctl DIR ...".

Environment:
  POLYCRUD_BIND_ADDRESS          the address every instance listens on and
                                 announces (default 127.0.0.1; a host's own
                                 address inside a network namespace of the
                                 multi-host layout, deploy/cluster/)
  POLYCRUD_GALERA_PEERS          comma-separated ADDR:PORT of every node's
                                 Galera port: MariaDB then starts as a node of
                                 a Galera cluster (docs/deploy.md); start
                                 waits until the node is synced (90 s)
  POLYCRUD_GALERA_PORT           this node's Galera port (group communication;
                                 incremental state transfer on PORT+1, full
                                 state transfer by rsync on PORT+2)
  POLYCRUD_GALERA_NEW_CLUSTER    1: this node starts a new cluster (the first
                                 node only; the others join it)
  POLYCRUD_GALERA_NODE_NAME      the node's name in the cluster (default: the
                                 name of DIR)
  POLYCRUD_MYSQL_CLIENT_HOSTS    hosts the bootstrapped user may connect
                                 from, space-separated (default
                                 "127.0.0.1 localhost"; e.g. 10.77.0.% for the
                                 hosts of the multi-host layout)
  POLYCRUD_MARIADB_BUFFER_POOL   innodb_buffer_pool_size (default 1G, sized
                                 for the 8-million-user data set)
  POLYCRUD_MARIADB_TLS_DIR       a folder made by deploy/local/tls.sh: MariaDB
                                 then serves TLS with its server.pem and
                                 server.key and refuses TCP clients that do
                                 not use it (require_secure_transport)
  POLYCRUD_REDIS_MAXMEMORY       Redis maxmemory (default 3gb, room for the
                                 8-million-user data set). The policy is
                                 noeviction: a full Redis refuses new entries
                                 rather than drop a tombstone before its TTL
                                 (docs/cache-protocol.md)
  POLYCRUD_REDIS_TLS_DIR         a folder made by deploy/local/tls.sh: Redis then
                                 serves TLS only on PORT (no cleartext port),
                                 with its server.pem and server.key; clients
                                 need no certificate (remembered in
                                 DIR/tls.dir for later commands)
  POLYCRUD_REDIS_CLUSTER         1: a Redis Cluster node (cluster-enabled, its
                                 state in DIR/nodes.conf, node timeout 2 s,
                                 the other shards serving while one has no
                                 master, replicas logging in to their master
                                 as admin); forming the cluster is the caller's
  POLYCRUD_REDIS_CLUSTER_PORT    its cluster bus port (default PORT + 10000)
  POLYCRUD_REDIS_PASSWORD        password of the "polycrud" Redis user, stored
                                 in DIR/server.password (unset: the file's, or
                                 a random one)
  POLYCRUD_REDIS_ADMIN_PASSWORD  the same for "admin" (DIR/admin.password)
  POLYCRUD_AMQP_PASSWORD         password of the "polycrud" RabbitMQ user,
                                 stored in DIR/server.password (unset: the
                                 file's, or a random one); a new one takes
                                 effect on the next start
  POLYCRUD_AMQP_VHOST            its vhost (default polycrud)
  POLYCRUD_RABBITMQ_DIST_PORT    the node's Erlang distribution port (default
                                 PORT + 1)
  POLYCRUD_RABBITMQ_EPMD_PORT    the port of its epmd (default PORT + 2)
EOF
}

die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

usage_error() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  printf 'Run "%s --help" for usage.\n' "$PROG" >&2
  exit 2
}

info() { printf '%s: %s\n' "$PROG" "$*"; }

# Prints the last lines of each existing file given, to stderr.
show_tail() {
  local f
  for f in "$@"; do
    if [[ -s $f ]]; then
      printf -- '--- last lines of %s ---\n' "$f" >&2
      tail -n 25 "$f" >&2
    fi
  done
}

check_port() {
  if ! [[ $1 =~ ^[0-9]{1,5}$ ]] || ((10#$1 < 1 || 10#$1 > 65535)); then
    usage_error "invalid port '$1' (expected 1-65535)"
  fi
}

# True if something accepts TCP connections on the bind address's PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/$BIND/$1") 2>/dev/null
}

# Absolute form of DIR, which must exist.
abs_dir() { (cd "$1" && pwd -P); }

# True if PID is a live (non-zombie) process, whatever its command name.
pid_exists() {
  local stat
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  # The state follows the parenthesised command name; a zombie has exited
  # already and only waits to be reaped.
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# True if PID is a live (non-zombie) process whose command name is COMM.
pid_alive() {
  local comm
  pid_exists "$1" || return 1
  { read -r comm <"/proc/$1/comm"; } 2>/dev/null || return 1
  [[ $comm == "$2" ]]
}

# True if PID is the instance of DIR: redis-server and epmd run inside DIR,
# mariadbd was started with DIR/my.cnf, RabbitMQ's VM with "-home DIR". A
# recycled pid, or another instance, never passes this test, so it is never
# signalled.
owned_by_dir() {
  local pid=$1 comm=$2 dir=$3 arg previous=
  case $comm in
    redis-server | epmd)
      [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$dir" ]]
      ;;
    mariadbd)
      while IFS= read -r -d '' arg; do
        [[ $arg == "--defaults-file=$dir/my.cnf" ]] && return 0
      done <"/proc/$pid/cmdline" 2>/dev/null
      return 1
      ;;
    beam.smp)
      while IFS= read -r -d '' arg; do
        [[ $previous == -home && $arg == "$dir" ]] && return 0
        previous=$arg
      done <"/proc/$pid/cmdline" 2>/dev/null
      return 1
      ;;
    *) return 1 ;;
  esac
}

# Prints the pid stored in DIR/PIDFILE if it is DIR's live COMM instance.
running_pid() {
  local pidfile=$1 comm=$2 dir=${1%/*} pid
  [[ -f $pidfile ]] || return 1
  { read -r pid <"$pidfile" || [[ -n ${pid:-} ]]; } 2>/dev/null || return 1
  pid_alive "$pid" "$comm" || return 1
  owned_by_dir "$pid" "$comm" "$dir" || return 1
  printf '%s\n' "$pid"
}

# Waits up to TIMEOUT seconds for PID to exit; true if it did.
wait_exit() {
  local pid=$1 comm=$2 deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    pid_alive "$pid" "$comm" || return 0
    sleep 0.1
  done
  ! pid_alive "$pid" "$comm"
}

# Stops PID (command name COMM): SIGTERM, then SIGKILL after TIMEOUT seconds.
terminate() {
  local name=$1 pid=$2 comm=$3 timeout_s=$4
  kill -TERM "$pid" 2>/dev/null || true
  if wait_exit "$pid" "$comm" "$timeout_s"; then
    return 0
  fi
  printf '%s: warning: %s (pid %s) still running after %s s; sending SIGKILL\n' \
    "$PROG" "$name" "$pid" "$timeout_s" >&2
  kill -KILL "$pid" 2>/dev/null || true
  wait_exit "$pid" "$comm" 10 || die "$name (pid $pid) survived SIGKILL"
}

# Runs "$@" (via exec) with stdin from /dev/null and every descriptor above 2
# closed: a daemon must not keep a pipe of its caller (a test harness reading
# our output) or this script's lock open.
exec_detached() {
  local f fd
  for f in /proc/"$BASHPID"/fd/*; do
    fd=${f##*/}
    if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then
      { exec {fd}>&-; } 2>/dev/null || true
    fi
  done
  exec "$@" </dev/null
}

# Serialises commands on one instance directory (fd 9; processes started from
# here do not inherit it, so the lock ends with the command).
lock_dir() {
  local dir=$1
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$dir/.lock"
  flock -w "$LOCK_TIMEOUT_S" 9 || die "$dir is locked by another stack.sh command"
}

# Writes FILE (mode 0600) with VALUE if VALUE is set, else with a random
# secret unless FILE exists already.
secret_file() {
  local file=$1 value=$2
  if [[ -n $value ]]; then
    (umask 077 && printf '%s\n' "$value" >"$file.tmp")
    mv -f "$file.tmp" "$file"
  elif [[ ! -s $file ]]; then
    (umask 077 && od -An -vtx1 -N32 /dev/urandom | tr -d ' \n' >"$file.tmp" && echo >>"$file.tmp")
    mv -f "$file.tmp" "$file"
  fi
  chmod 600 "$file"
}

# The first line of FILE.
first_line() {
  local line=
  { IFS= read -r line <"$1" || [[ -n $line ]]; } 2>/dev/null || die "cannot read $1"
  printf '%s' "$line"
}

# ---------------------------------------------------------------- Redis ----

# The commands the server's Redis user may run: the cache protocol's and
# nothing else (docs/cache-protocol.md). SCRIPT EXISTS is for the Python
# benchmark peer (redis-py checks its script before a pipeline); CLUSTER
# SLOTS and ASKING for the server on a Redis Cluster, and there FLUSHALL too:
# the server empties a replica promoted by a failover before it uses it.
readonly REDIS_SERVER_COMMANDS='+get +mget +set +del +eval +evalsha +script|load +script|exists +ping +cluster|slots +asking'
readonly REDIS_CLUSTER_SERVER_COMMANDS='+flushall'

redis_password_hash() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# DIR/users.acl from the two password files: no default user.
redis_write_acl() {
  local dir=$1 server admin
  secret_file "$dir/server.password" "${POLYCRUD_REDIS_PASSWORD:-}"
  secret_file "$dir/admin.password" "${POLYCRUD_REDIS_ADMIN_PASSWORD:-}"
  local commands=$REDIS_SERVER_COMMANDS
  [[ ${POLYCRUD_REDIS_CLUSTER:-0} == 1 ]] && commands+=" $REDIS_CLUSTER_SERVER_COMMANDS"
  server=$(redis_password_hash "$(first_line "$dir/server.password")")
  admin=$(redis_password_hash "$(first_line "$dir/admin.password")")
  (
    umask 077
    {
      echo "user default off resetkeys resetchannels -@all"
      echo "user polycrud on #$server resetkeys ~user:* resetchannels -@all $commands"
      echo "user admin on #$admin ~* &* +@all"
    } >"$dir/users.acl.tmp"
  )
  mv -f "$dir/users.acl.tmp" "$dir/users.acl"
}

# redis-cli as the admin user of DIR (the password travels in the
# environment, never on the command line).
redis_admin_cli() {
  local dir=$1 port=$2 tls
  shift 2
  local -a secure=()
  if [[ -s $dir/tls.dir ]]; then
    tls=$(first_line "$dir/tls.dir")
    secure=(--tls --cacert "$tls/ca.pem")
  fi
  REDISCLI_AUTH=$(first_line "$dir/admin.password") \
    redis-cli --no-auth-warning "${secure[@]}" --user admin -h "$BIND" -p "$port" "$@"
}

redis_start() {
  local dir=$1 port=$2 pid running_port deadline reply
  check_port "$port"
  command -v redis-server >/dev/null 2>&1 ||
    die "redis-server not found; install it with ./polycrud setup (Debian package redis-server)"
  command -v redis-cli >/dev/null 2>&1 ||
    die "redis-cli not found; install it with ./polycrud setup (Debian package redis-tools)"
  mkdir -p "$dir"
  dir=$(abs_dir "$dir")
  lock_dir "$dir"

  if pid=$(running_pid "$dir/redis.pid" redis-server); then
    running_port=$(cat "$dir/redis.port" 2>/dev/null || true)
    if [[ -n $running_port && $running_port != "$port" ]]; then
      die "redis already runs in $dir on port $running_port (pid $pid), not $port; stop it first"
    fi
    info "redis already running in $dir (pid $pid, port $port)"
    return 0
  fi
  rm -f "$dir/redis.pid"
  if port_in_use "$port"; then
    die "port $port on $BIND is already in use by another process; choose another port"
  fi

  redis_write_acl "$dir"
  local tls=${POLYCRUD_REDIS_TLS_DIR:-}
  local -a listen=(--port "$port")
  rm -f "$dir/tls.dir"
  if [[ -n $tls ]]; then
    [[ -s $tls/server.pem && -s $tls/server.key && -s $tls/ca.pem ]] ||
      die "POLYCRUD_REDIS_TLS_DIR=$tls lacks ca.pem, server.pem or server.key (make them with deploy/local/tls.sh)"
    tls=$(abs_dir "$tls")
    listen=(--port 0 --tls-port "$port" --tls-cert-file "$tls/server.pem"
      --tls-key-file "$tls/server.key" --tls-ca-cert-file "$tls/ca.pem"
      --tls-auth-clients no --tls-protocols "TLSv1.2 TLSv1.3")
    printf '%s\n' "$tls" >"$dir/tls.dir"
  fi
  local -a config=()
  if [[ ${POLYCRUD_REDIS_CLUSTER:-0} == 1 ]]; then
    listen+=(--cluster-enabled yes --cluster-config-file "$dir/nodes.conf"
      --cluster-node-timeout 2000 --cluster-require-full-coverage no
      --repl-diskless-sync-delay 0)
    # A replica logs in to its master as admin; the password stays in a
    # 0600 file that redis-server reads as its configuration file.
    (
      umask 077
      printf 'masteruser admin\nmasterauth %s\n' "$(first_line "$dir/admin.password")" \
        >"$dir/cluster.conf"
    )
    config=("$dir/cluster.conf")
    # The address other nodes and clients are told (CLUSTER SLOTS, MOVED).
    listen+=(--cluster-announce-ip "$BIND")
    if [[ -n ${POLYCRUD_REDIS_CLUSTER_PORT:-} ]]; then
      listen+=(--cluster-port "$POLYCRUD_REDIS_CLUSTER_PORT")
    fi
  fi
  local -a args=(
    "${listen[@]}" --bind "$BIND"
    --save '' --appendonly no
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
    --aclfile "$dir/users.acl"
    --maxmemory "${POLYCRUD_REDIS_MAXMEMORY:-3gb}" --maxmemory-policy noeviction
  )
  if ! (exec_detached redis-server "${config[@]}" "${args[@]}") >>"$dir/redis.log" 2>&1; then
    show_tail "$dir/redis.log"
    die "redis-server failed to start in $dir"
  fi
  printf '%s\n' "$port" >"$dir/redis.port"

  deadline=$((SECONDS + REDIS_START_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    if pid=$(running_pid "$dir/redis.pid" redis-server); then
      reply=$(redis_admin_cli "$dir" "$port" ping 2>/dev/null || true)
      if [[ $reply == PONG ]]; then
        info "redis started in $dir (pid $pid, port $port)"
        return 0
      fi
    fi
    sleep 0.1
  done
  if pid=$(running_pid "$dir/redis.pid" redis-server); then
    terminate redis "$pid" redis-server "$REDIS_STOP_TIMEOUT_S"
  fi
  rm -f "$dir/redis.pid"
  show_tail "$dir/redis.log"
  die "redis did not answer PING on port $port within ${REDIS_START_TIMEOUT_S} s"
}

redis_stop() {
  local dir=$1 pid
  if [[ ! -d $dir ]]; then
    info "redis not running (no directory $dir)"
    return 0
  fi
  dir=$(abs_dir "$dir")
  lock_dir "$dir"
  if ! pid=$(running_pid "$dir/redis.pid" redis-server); then
    rm -f "$dir/redis.pid"
    info "redis not running in $dir"
    return 0
  fi
  terminate redis "$pid" redis-server "$REDIS_STOP_TIMEOUT_S"
  rm -f "$dir/redis.pid"
  info "redis stopped in $dir (was pid $pid)"
}

redis_status() {
  local dir=$1 pid port
  [[ -d $dir ]] && dir=$(abs_dir "$dir")
  if [[ -d $dir ]] && pid=$(running_pid "$dir/redis.pid" redis-server); then
    port=$(cat "$dir/redis.port" 2>/dev/null || echo '?')
    printf 'redis    %-8s pid %-8s port %-6s %s\n' running "$pid" "$port" "$dir"
    return 0
  fi
  printf 'redis    %-8s %-22s %s\n' stopped '' "$dir"
  return 3
}

# -------------------------------------------------------------- MariaDB ----

# The unix socket path must fit in sun_path (108 bytes); deep directories
# (build trees, test scratch folders) get a short path under /tmp instead.
mariadb_socket_path() {
  local dir=$1 sock=$1/mysqld.sock hash
  if ((${#sock} > 100)); then
    hash=$(printf '%s' "$dir" | sha256sum | cut -c1-16)
    sock=/tmp/polycrud-mysqld-$hash.sock
  fi
  printf '%s\n' "$sock"
}

# The [mysqld] lines for POLYCRUD_MARIADB_TLS_DIR, if set.
mariadb_tls_config() {
  local tls=${POLYCRUD_MARIADB_TLS_DIR:-}
  [[ -n $tls ]] || return 0
  [[ -s $tls/server.pem && -s $tls/server.key && -s $tls/ca.pem ]] ||
    die "POLYCRUD_MARIADB_TLS_DIR=$tls lacks ca.pem, server.pem or server.key (make them with deploy/local/tls.sh)"
  printf '%s\n' "# TLS (POLYCRUD_MARIADB_TLS_DIR); the Unix socket counts as secure." \
    "ssl-ca=$tls/ca.pem" "ssl-cert=$tls/server.pem" "ssl-key=$tls/server.key" \
    "tls_version=TLSv1.2,TLSv1.3" "require_secure_transport=ON"
}

# The [mysqld] lines of a Galera node (POLYCRUD_GALERA_PEERS set), if any.
mariadb_galera_config() {
  local dir=$1 peers=${POLYCRUD_GALERA_PEERS:-} port=${POLYCRUD_GALERA_PORT:-}
  [[ -n $peers ]] || return 0
  [[ -n $port ]] || die "POLYCRUD_GALERA_PEERS needs POLYCRUD_GALERA_PORT (this node's Galera port)"
  check_port "$port"
  [[ $peers =~ ^[0-9A-Za-z.:,-]+$ ]] || die "POLYCRUD_GALERA_PEERS: ADDR:PORT,... expected, not '$peers'"
  [[ -f $GALERA_PROVIDER ]] ||
    die "$GALERA_PROVIDER not found; install it with ./polycrud setup (Debian package galera-4)"
  command -v rsync >/dev/null 2>&1 ||
    die "rsync not found (full state transfers use it); install it with ./polycrud setup"
  cat <<EOF
# A Galera node (POLYCRUD_GALERA_*): row-based replication of every write,
# certified on commit; a joiner gets the data by rsync or from the donor's
# write-set cache.
wsrep_on=ON
wsrep_provider=$GALERA_PROVIDER
wsrep_cluster_name=polycrud
wsrep_cluster_address=gcomm://$peers
wsrep_node_name=${POLYCRUD_GALERA_NODE_NAME:-$(basename "$dir")}
wsrep_node_address=$BIND
wsrep_provider_options="gmcast.listen_addr=tcp://$BIND:$port;ist.recv_addr=$BIND:$((port + 1));gcache.size=256M;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S"
wsrep_sst_method=rsync
wsrep_sst_receive_address=$BIND:$((port + 2))
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
EOF
}

# The binary log, synced on every commit group, on a single server. Without
# it InnoDB makes a commit visible to other sessions before its redo log is
# written: a read can return (and the cache keep) a version that a crash of
# mariadbd a moment later loses (docs/reliability.md). With it a transaction
# becomes visible only after its binlog entry is written, and crash recovery
# commits every prepared transaction the binlog holds. A Galera node has
# certified the write on the other nodes before it is visible on its own.
mariadb_binlog_config() {
  [[ -z ${POLYCRUD_GALERA_PEERS:-} ]] || return 0
  cat <<EOF
log_bin=mariadb-bin
server_id=1
binlog_format=ROW
sync_binlog=1
max_binlog_size=256M
binlog_expire_logs_seconds=86400
EOF
}

# The OS user mariadbd runs as: root, except on a Galera node, where it is
# mysql. A full state transfer runs an rsync daemon as the server's user, and
# rsync started by root would switch to "nobody", who cannot write the data
# directory.
mariadb_os_user() {
  if [[ -n ${POLYCRUD_GALERA_PEERS:-} ]]; then
    printf 'mysql\n'
  else
    printf 'root\n'
  fi
}

mariadb_write_config() {
  local dir=$1 port=$2 sock
  sock=$(mariadb_socket_path "$dir")
  mkdir -p "$dir/files"
  chmod 700 "$dir/files"
  cat >"$dir/my.cnf.tmp" <<EOF
# Written by deploy/local/stack.sh on every start; edits are overwritten.
[mysqld]
datadir=$dir/data
socket=$sock
pid-file=$dir/mysqld.pid
port=$port
bind-address=$BIND
user=$(mariadb_os_user)
skip-name-resolve
character-set-server=utf8mb4
collation-server=utf8mb4_bin
innodb_flush_log_at_trx_commit=1
innodb_buffer_pool_size=${POLYCRUD_MARIADB_BUFFER_POOL:-1G}
max_connections=500
# LOAD DATA LOCAL (the seeder sends its own files); the server itself reads
# and writes files only in DIR/files.
local_infile=1
secure_file_priv=$dir/files
log-error=$dir/mysqld.log
$(mariadb_tls_config)
$(mariadb_binlog_config)
$(mariadb_galera_config "$dir")

[client]
socket=$sock
port=$port
user=root
default-character-set=utf8mb4
EOF
  mv -f "$dir/my.cnf.tmp" "$dir/my.cnf"
}

# The port in DIR/my.cnf ([mysqld] section), if any.
mariadb_config_port() {
  [[ -f $1/my.cnf ]] || return 0
  sed -n 's/^port=\([0-9]*\)$/\1/p' "$1/my.cnf" | head -n 1
}

mariadb_ping() {
  mariadb-admin --defaults-file="$1/my.cnf" --connect-timeout=2 ping >/dev/null 2>&1
}

# True when DIR's server is no Galera node, or one that is synced with its
# cluster and serves (wsrep_ready, state 4 "Synced").
mariadb_ready() {
  local dir=$1 state
  [[ -s $dir/galera.port ]] || return 0
  state=$(mariadb --defaults-file="$dir/my.cnf" --batch --skip-column-names -e \
    "SELECT CONCAT(@@global.wsrep_on, ' ', (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
       WHERE VARIABLE_NAME = 'WSREP_READY'), ' ', (SELECT VARIABLE_VALUE FROM
       information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE'))" 2>/dev/null) ||
    return 1
  [[ $state == "ON ON 4" ]]
}

# Creates DIR/data with the system tables on first use. The tables are built
# in data.init and renamed only when complete, so an interrupted
# initialisation is simply redone.
mariadb_init() {
  local dir=$1
  if [[ -d $dir/data/mysql ]]; then
    return 0
  fi
  if [[ -d $dir/data ]] && [[ -n $(ls -A "$dir/data") ]]; then
    die "$dir/data exists but is not a MariaDB data directory; move it away first"
  fi
  command -v mariadb-install-db >/dev/null 2>&1 ||
    die "mariadb-install-db not found; install it with ./polycrud setup (Debian package mariadb-server)"
  info "initialising MariaDB data directory $dir/data"
  rm -rf "$dir/data.init"
  if ! (exec_detached mariadb-install-db --defaults-file="$dir/my.cnf" \
    --datadir="$dir/data.init" --user="$(mariadb_os_user)" --auth-root-authentication-method=socket \
    --skip-test-db) >"$dir/install.log" 2>&1; then
    show_tail "$dir/install.log" "$dir/mysqld.log"
    rm -rf "$dir/data.init"
    die "mariadb-install-db failed (log: $dir/install.log)"
  fi
  rm -rf "$dir/data"
  mv "$dir/data.init" "$dir/data"
}

mariadb_start() {
  local dir=$1 port=$2 pid running_port deadline
  check_port "$port"
  command -v mariadbd >/dev/null 2>&1 ||
    die "mariadbd not found; install it with ./polycrud setup (Debian package mariadb-server)"
  command -v mariadb-admin >/dev/null 2>&1 ||
    die "mariadb-admin not found; install it with ./polycrud setup (Debian package mariadb-client)"
  mkdir -p "$dir"
  dir=$(abs_dir "$dir")
  lock_dir "$dir"

  if pid=$(running_pid "$dir/mysqld.pid" mariadbd); then
    running_port=$(mariadb_config_port "$dir")
    if [[ -n $running_port && $running_port != "$port" ]]; then
      die "mariadb already runs in $dir on port $running_port (pid $pid), not $port; stop it first"
    fi
    info "mariadb already running in $dir (pid $pid, port $port)"
    return 0
  fi
  rm -f "$dir/mysqld.pid"
  if port_in_use "$port"; then
    die "port $port on $BIND is already in use by another process; choose another port"
  fi

  mariadb_write_config "$dir" "$port"
  if [[ $(mariadb_os_user) != root ]]; then
    id "$(mariadb_os_user)" >/dev/null 2>&1 ||
      die "no OS user $(mariadb_os_user) (Debian's mariadb-server creates it)"
    chown -R "$(mariadb_os_user):" "$dir"
  fi
  mariadb_init "$dir"
  local -a first=()
  rm -f "$dir/galera.port"
  if [[ -n ${POLYCRUD_GALERA_PEERS:-} ]]; then
    printf '%s\n' "$POLYCRUD_GALERA_PORT" >"$dir/galera.port"
    if [[ ${POLYCRUD_GALERA_NEW_CLUSTER:-0} == 1 ]]; then
      first=(--wsrep-new-cluster)
    fi
  fi

  # A new session, so the server outlives this script and its terminal. The
  # subshell execs setsid, which execs mariadbd (a background job is no
  # process-group leader, so setsid need not fork): $! is the server's pid.
  (exec_detached setsid mariadbd --defaults-file="$dir/my.cnf" "${first[@]}") >>"$dir/mysqld.out" 2>&1 &
  pid=$!

  local timeout_s=$MARIADB_START_TIMEOUT_S
  [[ -s $dir/galera.port ]] && timeout_s=$GALERA_START_TIMEOUT_S
  deadline=$((SECONDS + timeout_s))
  while ((SECONDS < deadline)); do
    if ! pid_exists "$pid"; then
      show_tail "$dir/mysqld.log" "$dir/mysqld.out"
      die "mariadbd exited during start-up (log: $dir/mysqld.log)"
    fi
    if mariadb_ping "$dir" && mariadb_ready "$dir"; then
      # mariadbd writes its pid file itself; make sure it names this process.
      [[ $(cat "$dir/mysqld.pid" 2>/dev/null || true) == "$pid" ]] ||
        printf '%s\n' "$pid" >"$dir/mysqld.pid"
      mariadb_lock_down "$dir"
      info "mariadb started in $dir (pid $pid, port $port)"
      return 0
    fi
    sleep 0.1
  done
  terminate mariadb "$pid" mariadbd "$MARIADB_STOP_TIMEOUT_S"
  rm -f "$dir/mysqld.pid"
  show_tail "$dir/mysqld.log" "$dir/mysqld.out"
  die "mariadb did not answer (or sync) on port $port within $timeout_s s (log: $dir/mysqld.log)"
}

# Root only as root@localhost through the Unix socket, no anonymous users:
# new data directories are created so, older ones are brought to it here.
mariadb_lock_down() {
  local dir=$1 drops
  drops=$(mariadb --defaults-file="$dir/my.cnf" --batch --skip-column-names -e \
    "SELECT CONCAT('DROP USER ', QUOTE(User), '@', QUOTE(Host), ';') FROM mysql.user
       WHERE User = '' OR (User = 'root' AND Host <> 'localhost')") ||
    die "cannot read the accounts of the MariaDB in $dir"
  {
    printf '%s\n' "$drops"
    echo "ALTER USER root@localhost IDENTIFIED VIA unix_socket;"
  } | mariadb --defaults-file="$dir/my.cnf" --batch ||
    die "cannot lock down the root account of the MariaDB in $dir"
}

mariadb_stop() {
  local dir=$1 pid
  if [[ ! -d $dir ]]; then
    info "mariadb not running (no directory $dir)"
    return 0
  fi
  dir=$(abs_dir "$dir")
  lock_dir "$dir"
  if ! pid=$(running_pid "$dir/mysqld.pid" mariadbd); then
    rm -f "$dir/mysqld.pid"
    info "mariadb not running in $dir"
    return 0
  fi
  terminate mariadb "$pid" mariadbd "$MARIADB_STOP_TIMEOUT_S"
  rm -f "$dir/mysqld.pid"
  info "mariadb stopped in $dir (was pid $pid)"
}

mariadb_status() {
  local dir=$1 pid port
  [[ -d $dir ]] && dir=$(abs_dir "$dir")
  if [[ -d $dir ]] && pid=$(running_pid "$dir/mysqld.pid" mariadbd); then
    port=$(mariadb_config_port "$dir")
    printf 'mariadb  %-8s pid %-8s port %-6s %s\n' running "$pid" "${port:-?}" "$dir"
    return 0
  fi
  printf 'mariadb  %-8s %-22s %s\n' stopped '' "$dir"
  return 3
}

# Quotes S as the body of a single-quoted SQL string literal.
sql_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\'/\\\'}
  printf '%s' "$s"
}

mariadb_bootstrap() {
  local dir=$1 database=$2 user=$3 password='' pw host
  IFS= read -r password || [[ -n $password ]] || usage_error "no password on stdin"
  [[ $database =~ ^[A-Za-z0-9_]{1,64}$ ]] ||
    usage_error "invalid database name '$database' (letters, digits and _ only)"
  [[ $user =~ ^[A-Za-z0-9_.-]{1,80}$ ]] ||
    usage_error "invalid user name '$user' (letters, digits, _ . - only)"
  [[ -n $password ]] || usage_error "the password (stdin) must not be empty"
  for host in ${POLYCRUD_MYSQL_CLIENT_HOSTS:-}; do
    [[ $host =~ ^[A-Za-z0-9.%_:-]{1,60}$ ]] ||
      usage_error "POLYCRUD_MYSQL_CLIENT_HOSTS: invalid host '$host'"
  done
  [[ -d $dir ]] || die "no MariaDB in $dir; start it first: stack.sh mariadb start $dir PORT"
  dir=$(abs_dir "$dir")
  running_pid "$dir/mysqld.pid" mariadbd >/dev/null ||
    die "mariadb is not running in $dir; start it first: stack.sh mariadb start $dir PORT"

  pw=$(sql_string "$password")
  {
    printf "CREATE DATABASE IF NOT EXISTS \`%s\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n" \
      "$database"
    for host in ${POLYCRUD_MYSQL_CLIENT_HOSTS:-127.0.0.1 localhost}; do
      printf "CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s';\n" "$user" "$host" "$pw"
      printf "ALTER USER '%s'@'%s' IDENTIFIED BY '%s';\n" "$user" "$host" "$pw"
      printf "GRANT ALL PRIVILEGES ON \`%s\`.* TO '%s'@'%s';\n" "$database" "$user" "$host"
    done
    # The statements carry the password: sent on stdin, never in argv.
  } | mariadb --defaults-file="$dir/my.cnf" --batch ||
    die "bootstrap of database '$database' failed in $dir"
  info "database '$database' and user '$user' ready in $dir"
}

# ------------------------------------------------------------- RabbitMQ ----

# A setting of DIR's instance (NODE, BIND, AMQP_PORT, DIST_PORT, EPMD_PORT,
# VHOST), as the last start wrote it to DIR/rabbitmq.instance.
rabbitmq_setting() {
  [[ -f $1/rabbitmq.instance ]] || return 1
  sed -n "s/^$2=//p" "$1/rabbitmq.instance" | head -n 1
}

# ADDRESS as an Erlang tuple, e.g. {127,0,0,1} (inet_dist_use_interface).
erlang_ip_tuple() {
  [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] ||
    die "RabbitMQ needs an IPv4 bind address, not '$1' (POLYCRUD_BIND_ADDRESS)"
  printf '{%d,%d,%d,%d}\n' "$((10#${BASH_REMATCH[1]}))" "$((10#${BASH_REMATCH[2]}))" \
    "$((10#${BASH_REMATCH[3]}))" "$((10#${BASH_REMATCH[4]}))"
}

# The environment of DIR's node and of rabbitmqctl against it, one NAME=value
# per line, from DIR/rabbitmq.instance. Every path is in DIR, and the files
# under /etc/rabbitmq are replaced by DIR's (absent ones count as empty), so
# nothing of a system-wide RabbitMQ is read or written. The instance's own
# epmd runs before the node starts and until it has stopped, so neither the
# VM (-start_epmd false) nor RabbitMQ's code, which starts one when it finds
# none, adds an epmd that nothing would stop; ERL_EPMD_ADDRESS would keep
# even that one off other addresses.
rabbitmq_env() {
  local dir=$1 node bind tuple
  node=$(rabbitmq_setting "$dir" NODE)
  bind=$(rabbitmq_setting "$dir" BIND)
  [[ -n $node && -n $bind ]] || die "no RabbitMQ instance in $dir; start it first: stack.sh rabbitmq start $dir PORT"
  tuple=$(erlang_ip_tuple "$bind")
  printf '%s\n' \
    "HOME=$dir" \
    "RABBITMQ_NODENAME=$node" \
    RABBITMQ_USE_LONGNAME=true \
    "RABBITMQ_NODE_IP_ADDRESS=$bind" \
    "RABBITMQ_NODE_PORT=$(rabbitmq_setting "$dir" AMQP_PORT)" \
    "RABBITMQ_DIST_PORT=$(rabbitmq_setting "$dir" DIST_PORT)" \
    "ERL_EPMD_PORT=$(rabbitmq_setting "$dir" EPMD_PORT)" \
    "ERL_EPMD_ADDRESS=$bind" \
    "RABBITMQ_MNESIA_BASE=$dir/mnesia" \
    "RABBITMQ_LOG_BASE=$dir/log" \
    "RABBITMQ_LOGS=$dir/log/rabbitmq.log" \
    "RABBITMQ_PID_FILE=$dir/rabbitmq.pid" \
    "RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins" \
    "RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf" \
    "RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf" \
    "RABBITMQ_CONFIG_FILES=$dir/conf.d/*.conf" \
    "RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config" \
    "ERL_CRASH_DUMP=$dir/erl_crash.dump" \
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-start_epmd false -kernel inet_dist_use_interface $tuple" \
    "RABBITMQ_CTL_ERL_ARGS=-start_epmd false -kernel inet_dist_use_interface $tuple"
}

# rabbitmqctl ARGS... against DIR's node, with its cookie and its epmd.
# Only while that epmd runs: rabbitmqctl starts an epmd of its own when it
# finds none (whatever -start_epmd says), and nothing would ever stop it.
rabbitmq_ctl() {
  local dir=$1 node
  shift
  running_pid "$dir/epmd.pid" epmd >/dev/null ||
    die "rabbitmq is not running in $dir (no epmd of its own); start it: stack.sh rabbitmq start $dir PORT"
  local -a env=()
  mapfile -t env < <(rabbitmq_env "$dir")
  ((${#env[@]} > 0)) || exit 1
  node=$(rabbitmq_setting "$dir" NODE)
  env "${env[@]}" "$RABBITMQ_BIN/rabbitmqctl" -n "$node" "$@"
}

# The Erlang cookie that lets rabbitmqctl talk to the node: made once in
# DIR, the node's HOME; Erlang refuses a cookie others can read.
rabbitmq_cookie() {
  local file=$1/.erlang.cookie
  if [[ ! -s $file ]]; then
    (umask 077 && od -An -vtx1 -N20 /dev/urandom | tr -d ' \n' >"$file.tmp")
    mv -f "$file.tmp" "$file"
  fi
  chmod 400 "$file"
}

rabbitmq_write_config() {
  local dir=$1 vhost=$2 once
  once=$(od -An -vtx1 -N16 /dev/urandom | tr -d ' \n')
  (
    umask 077
    cat >"$dir/rabbitmq.conf.tmp" <<CONF
# Written by deploy/local/stack.sh on every start; edits are overwritten.
# The first user a new node makes, instead of guest/guest, administrator on
# "/": the application's, without tags, allowed on its own vhost only. Its
# password here is a throw-away one that start replaces with
# DIR/server.password through rabbitmqctl right after the boot, so no
# password ever needs quoting for this file.
default_user = $AMQP_USER
default_pass = $once
default_vhost = $vhost
default_user_tags.administrator = false
CONF
  )
  mv -f "$dir/rabbitmq.conf.tmp" "$dir/rabbitmq.conf"
  # No plugins: no management listener, nothing but AMQP 0-9-1.
  printf '[].\n' >"$dir/enabled_plugins"
  printf '# Empty on purpose: /etc/rabbitmq/rabbitmq-env.conf is not for this node.\n' \
    >"$dir/rabbitmq-env.conf"
}

# Starts DIR's own epmd on PORT, on the bind address (epmd adds the loopback
# addresses by itself). In the background rather than with -daemon, so $! is
# its pid, recorded in DIR/epmd.pid; it runs inside DIR, which owned_by_dir
# checks before it is ever signalled.
rabbitmq_start_epmd() {
  local dir=$1 port=$2 pid deadline
  # One left by a node that died: it is started again with this start's
  # port and address.
  if pid=$(running_pid "$dir/epmd.pid" epmd); then
    terminate epmd "$pid" epmd 10
  fi
  rm -f "$dir/epmd.pid"
  if port_in_use "$port"; then
    die "epmd port $port on $BIND is already in use by another process; choose another AMQP port or set POLYCRUD_RABBITMQ_EPMD_PORT"
  fi
  (cd "$dir" && exec_detached setsid epmd -port "$port" -address "$BIND") >>"$dir/epmd.log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$dir/epmd.pid"
  deadline=$((SECONDS + EPMD_START_TIMEOUT_S))
  # Asked as epmd (on the loopback, where it always listens), not just
  # connected to: a bare connection only fills its log with complaints.
  until epmd -port "$port" -names >/dev/null 2>&1; do
    if ! pid_exists "$pid" || ((SECONDS >= deadline)); then
      pid_exists "$pid" && terminate epmd "$pid" epmd 10
      rm -f "$dir/epmd.pid"
      show_tail "$dir/epmd.log"
      die "epmd did not listen on $BIND:$port within $EPMD_START_TIMEOUT_S s (log: $dir/epmd.log)"
    fi
    sleep 0.1
  done
}

rabbitmq_stop_epmd() {
  local dir=$1 pid
  if pid=$(running_pid "$dir/epmd.pid" epmd); then
    terminate epmd "$pid" epmd 10
  fi
  rm -f "$dir/epmd.pid"
}

# Stops what a failed start left (the node, its epmd), shows the logs, dies.
rabbitmq_start_failed() {
  local dir=$1 pid slogan=
  shift
  if pid=$(running_pid "$dir/rabbitmq.pid" beam.smp); then
    terminate rabbitmq "$pid" beam.smp "$RABBITMQ_STOP_TIMEOUT_S"
  fi
  rm -f "$dir/rabbitmq.pid"
  rabbitmq_stop_epmd "$dir"
  show_tail "$dir/log/rabbitmq.log" "$dir/rabbitmq.out"
  # A VM that died in its boot says why in its crash dump.
  if [[ -s $dir/erl_crash.dump ]]; then
    slogan=$(sed -n 's/^Slogan: //p' "$dir/erl_crash.dump" | head -n 1 | cut -c1-300)
    die "$*: $slogan (crash dump: $dir/erl_crash.dump)"
  fi
  die "$* (log: $dir/log/rabbitmq.log)"
}

# No guest; the application's user with DIR/server.password, no tags, and
# permissions on VHOST only. Idempotent: also brings an older node to it.
# rabbitmqctl reads its stdin, so every call but the password's gets none.
rabbitmq_lock_down() {
  local dir=$1 vhost=$2 users listing line verb=add_user
  local -a perms=()
  users=$(rabbitmq_ctl "$dir" list_users --quiet --no-table-headers </dev/null) ||
    die "cannot list the users of the RabbitMQ in $dir"
  if grep -q '^guest[[:space:]]' <<<"$users"; then
    rabbitmq_ctl "$dir" delete_user guest </dev/null >/dev/null ||
      die "cannot delete the guest user in $dir"
  fi
  grep -q "^${AMQP_USER}[[:space:]]" <<<"$users" && verb=change_password
  # The password goes on stdin, never on a command line.
  rabbitmq_ctl "$dir" "$verb" "$AMQP_USER" <"$dir/server.password" >/dev/null ||
    die "cannot set the password of RabbitMQ user $AMQP_USER in $dir"
  if ! { rabbitmq_ctl "$dir" set_user_tags "$AMQP_USER" </dev/null >/dev/null &&
    rabbitmq_ctl "$dir" add_vhost "$vhost" </dev/null >/dev/null &&
    rabbitmq_ctl "$dir" set_permissions -p "$vhost" "$AMQP_USER" '.*' '.*' '.*' </dev/null >/dev/null; }; then
    die "cannot give RabbitMQ user $AMQP_USER its vhost $vhost in $dir"
  fi
  listing=$(rabbitmq_ctl "$dir" list_user_permissions --quiet --no-table-headers "$AMQP_USER" \
    </dev/null) || die "cannot list the permissions of RabbitMQ user $AMQP_USER in $dir"
  mapfile -t perms <<<"$listing"
  # Permissions on any other vhost (an earlier POLYCRUD_AMQP_VHOST) go.
  for line in "${perms[@]}"; do
    line=${line%%$'\t'*}
    [[ -n $line && $line != "$vhost" ]] || continue
    rabbitmq_ctl "$dir" clear_permissions -p "$line" "$AMQP_USER" </dev/null >/dev/null ||
      die "cannot clear the permissions of $AMQP_USER on vhost $line in $dir"
  done
}

rabbitmq_start() {
  local dir=$1 port=$2 pid running_port dist_port epmd_port vhost deadline remaining node
  check_port "$port"
  # The distribution and epmd ports sit next to the AMQP port, like Galera's
  # (RabbitMQ's own PORT+20000 would put 15672's distribution on 35672, the
  # first port rabbitmqctl itself listens on, and most others in the
  # kernel's ephemeral range).
  dist_port=${POLYCRUD_RABBITMQ_DIST_PORT:-$((10#$port + 1))}
  epmd_port=${POLYCRUD_RABBITMQ_EPMD_PORT:-$((10#$port + 2))}
  check_port "$dist_port"
  check_port "$epmd_port"
  vhost=${POLYCRUD_AMQP_VHOST:-polycrud}
  [[ $vhost =~ ^[A-Za-z0-9_.-]{1,64}$ ]] ||
    usage_error "invalid vhost '$vhost' (POLYCRUD_AMQP_VHOST: letters, digits, _ . - only)"
  erlang_ip_tuple "$BIND" >/dev/null
  [[ -x $RABBITMQ_BIN/rabbitmq-server && -x $RABBITMQ_BIN/rabbitmqctl ]] ||
    die "$RABBITMQ_BIN/rabbitmq-server not found; install it with ./polycrud setup (Debian package rabbitmq-server)"
  command -v epmd >/dev/null 2>&1 ||
    die "epmd not found; install it with ./polycrud setup (Debian package rabbitmq-server)"
  mkdir -p "$dir"
  dir=$(abs_dir "$dir")
  lock_dir "$dir"

  if pid=$(running_pid "$dir/rabbitmq.pid" beam.smp); then
    running_port=$(rabbitmq_setting "$dir" AMQP_PORT || true)
    if [[ -n $running_port && $running_port != "$port" ]]; then
      die "rabbitmq already runs in $dir on port $running_port (pid $pid), not $port; stop it first"
    fi
    info "rabbitmq already running in $dir (pid $pid, port $port)"
    return 0
  fi
  rm -f "$dir/rabbitmq.pid" "$dir/erl_crash.dump"
  if port_in_use "$port"; then
    die "port $port on $BIND is already in use by another process; choose another port"
  fi
  if port_in_use "$dist_port"; then
    die "distribution port $dist_port on $BIND is already in use by another process; choose another AMQP port or set POLYCRUD_RABBITMQ_DIST_PORT"
  fi

  # The node's name need only be unique on its own epmd; the port keeps it
  # apart from an earlier instance in DIR (mnesia/NAME holds its data). Long
  # names, so the host part is the bind address that rabbitmqctl reaches
  # (in a network namespace of deploy/cluster/, not the loopback).
  node=polycrud-$port@$BIND
  printf '%s\n' "NODE=$node" "BIND=$BIND" "AMQP_PORT=$port" "DIST_PORT=$dist_port" \
    "EPMD_PORT=$epmd_port" "VHOST=$vhost" >"$dir/rabbitmq.instance"
  secret_file "$dir/server.password" "${POLYCRUD_AMQP_PASSWORD:-}"
  rabbitmq_cookie "$dir"
  rabbitmq_write_config "$dir" "$vhost"
  rabbitmq_start_epmd "$dir" "$epmd_port"

  local -a env=()
  mapfile -t env < <(rabbitmq_env "$dir")
  printf '\n===== %s stack.sh rabbitmq start =====\n' "$(date '+%F %T')" >>"$dir/rabbitmq.out"
  # -detached: the VM forks into a session of its own and outlives this
  # script; it writes its pid to DIR/rabbitmq.pid itself.
  if ! (cd "$dir" && exec_detached env "${env[@]}" "$RABBITMQ_BIN/rabbitmq-server" -detached) \
    >>"$dir/rabbitmq.out" 2>&1; then
    rabbitmq_start_failed "$dir" "rabbitmq-server failed to start in $dir"
  fi

  deadline=$((SECONDS + RABBITMQ_START_TIMEOUT_S))
  # The pid file comes early in the boot; a VM that dies before it leaves
  # only a crash dump.
  until pid=$(running_pid "$dir/rabbitmq.pid" beam.smp); do
    if [[ -e $dir/erl_crash.dump ]]; then
      rabbitmq_start_failed "$dir" "rabbitmq exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      rabbitmq_start_failed "$dir" "rabbitmq wrote no pid file within $RABBITMQ_START_TIMEOUT_S s"
    fi
    sleep 0.1
  done
  remaining=$((deadline - SECONDS))
  ((remaining > 0)) || remaining=1
  # Returns once the broker runs, or at once if the VM exits.
  if ! rabbitmq_ctl "$dir" wait --timeout "$remaining" "$dir/rabbitmq.pid" </dev/null \
    >>"$dir/rabbitmq.out" 2>&1; then
    rabbitmq_start_failed "$dir" "rabbitmq did not start serving on port $port within $RABBITMQ_START_TIMEOUT_S s"
  fi
  rabbitmq_lock_down "$dir" "$vhost"
  info "rabbitmq started in $dir (pid $pid, port $port, epmd pid $(first_line "$dir/epmd.pid"))"
}

rabbitmq_stop() {
  local dir=$1 pid
  if [[ ! -d $dir ]]; then
    info "rabbitmq not running (no directory $dir)"
    return 0
  fi
  dir=$(abs_dir "$dir")
  lock_dir "$dir"
  if pid=$(running_pid "$dir/rabbitmq.pid" beam.smp); then
    # SIGTERM is RabbitMQ's orderly shutdown (queues and message stores
    # closed), as `rabbitmqctl stop` would do.
    terminate rabbitmq "$pid" beam.smp "$RABBITMQ_STOP_TIMEOUT_S"
  fi
  rm -f "$dir/rabbitmq.pid"
  # The node's epmd outlives it (rabbitmqctl stop leaves it, too).
  rabbitmq_stop_epmd "$dir"
  if [[ -n $pid ]]; then
    info "rabbitmq stopped in $dir (was pid $pid)"
  else
    info "rabbitmq not running in $dir"
  fi
}

rabbitmq_status() {
  local dir=$1 pid port
  [[ -d $dir ]] && dir=$(abs_dir "$dir")
  if [[ -d $dir ]] && pid=$(running_pid "$dir/rabbitmq.pid" beam.smp); then
    port=$(rabbitmq_setting "$dir" AMQP_PORT || true)
    printf 'rabbitmq %-8s pid %-8s port %-6s %s\n' running "$pid" "${port:-?}" "$dir"
    return 0
  fi
  printf 'rabbitmq %-8s %-22s %s\n' stopped '' "$dir"
  return 3
}

# ------------------------------------------------------------ any DIR ----

# Prints the state of every instance in DIR and its direct subdirectories.
status_all() {
  local root=$1 d found=0
  [[ -d $root ]] || {
    printf 'nothing in %s (no such directory)\n' "$root"
    return 0
  }
  root=$(abs_dir "$root")
  for d in "$root" "$root"/*/; do
    d=${d%/}
    [[ -d $d ]] || continue
    if [[ -e $d/redis.port || -e $d/redis.pid || -e $d/redis.log ]]; then
      redis_status "$d" || true
      found=1
    fi
    if [[ -e $d/my.cnf ]]; then
      mariadb_status "$d" || true
      found=1
    fi
    if [[ -e $d/rabbitmq.instance || -e $d/rabbitmq.pid || -e $d/epmd.pid ]]; then
      rabbitmq_status "$d" || true
      found=1
    fi
  done
  ((found)) || printf 'nothing in %s\n' "$root"
}

# Stops every instance whose pid file lies below DIR.
stop_all() {
  local root=$1 f
  local -A rabbitmq_done=()
  [[ -d $root ]] || return 0
  while IFS= read -r -d '' f; do
    case ${f##*/} in
      redis.pid) redis_stop "${f%/*}" ;;
      mysqld.pid) mariadb_stop "${f%/*}" ;;
      # A RabbitMQ DIR has two (the node's and its epmd's): stopped once.
      rabbitmq.pid | epmd.pid)
        [[ -n ${rabbitmq_done[${f%/*}]:-} ]] && continue
        rabbitmq_done[${f%/*}]=1
        rabbitmq_stop "${f%/*}"
        ;;
    esac
  done < <(find "$root" -maxdepth 5 \( -name redis.pid -o -name mysqld.pid -o -name rabbitmq.pid \
    -o -name epmd.pid \) -print0)
}

# ---------------------------------------------------------------- main ----

expect_args() {
  local want=$1 have=$2 what=$3
  ((have == want)) || usage_error "'$what' takes $((want)) argument(s), got $have"
}

main() {
  (($# > 0)) || {
    usage >&2
    exit 2
  }
  case $1 in
    -h | --help | help)
      usage
      return 0
      ;;
  esac
  local service=$1
  shift
  # "stack.sh redis --help", "stack.sh redis start --help" (only the first
  # two words).
  case "${1:-} ${2:-}" in
    -h\ * | --help\ * | *\ -h | *\ --help)
      usage
      return 0
      ;;
  esac
  case $service in
    redis)
      local action=${1:-}
      shift || true
      case $action in
        start)
          expect_args 2 $# "redis start DIR PORT"
          redis_start "$1" "$2"
          ;;
        stop)
          expect_args 1 $# "redis stop DIR"
          redis_stop "$1"
          ;;
        status)
          expect_args 1 $# "redis status DIR"
          redis_status "$1"
          ;;
        *) usage_error "unknown redis command '$action' (start, stop, status)" ;;
      esac
      ;;
    mariadb)
      local action=${1:-}
      shift || true
      case $action in
        start)
          expect_args 2 $# "mariadb start DIR PORT"
          mariadb_start "$1" "$2"
          ;;
        stop)
          expect_args 1 $# "mariadb stop DIR"
          mariadb_stop "$1"
          ;;
        status)
          expect_args 1 $# "mariadb status DIR"
          mariadb_status "$1"
          ;;
        bootstrap)
          expect_args 3 $# "mariadb bootstrap DIR DATABASE USER < PASSWORD_FILE"
          mariadb_bootstrap "$1" "$2" "$3"
          ;;
        *) usage_error "unknown mariadb command '$action' (start, stop, status, bootstrap)" ;;
      esac
      ;;
    rabbitmq)
      local action=${1:-}
      shift || true
      case $action in
        start)
          expect_args 2 $# "rabbitmq start DIR PORT"
          rabbitmq_start "$1" "$2"
          ;;
        stop)
          expect_args 1 $# "rabbitmq stop DIR"
          rabbitmq_stop "$1"
          ;;
        status)
          expect_args 1 $# "rabbitmq status DIR"
          rabbitmq_status "$1"
          ;;
        ctl)
          (($# >= 2)) || usage_error "'rabbitmq ctl DIR ARGS...' takes a directory and rabbitmqctl's arguments"
          [[ -d $1 ]] || die "no RabbitMQ in $1; start it first: stack.sh rabbitmq start $1 PORT"
          local dir
          dir=$(abs_dir "$1")
          shift
          rabbitmq_ctl "$dir" "$@"
          ;;
        *) usage_error "unknown rabbitmq command '$action' (start, stop, status, ctl)" ;;
      esac
      ;;
    status)
      expect_args 1 $# "status DIR"
      status_all "$1"
      ;;
    stop-all)
      expect_args 1 $# "stop-all DIR"
      stop_all "$1"
      ;;
    *) usage_error "unknown command '$service'" ;;
  esac
}

main "$@"
