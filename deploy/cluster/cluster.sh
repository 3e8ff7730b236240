#!/usr/bin/env bash
# The multi-host layout on one machine: every host a network namespace on a
# private switch (hosts.sh), real daemons in them: HAProxy on lb, two
# stateless polycrud-servers on app1 and app2, the web console on web, a
# Redis Cluster of three masters and three replicas on cache1-cache3, a
# three-node MariaDB Galera cluster on db1-db3 and RabbitMQ, where the
# servers publish change events, on mq. Clients run in the client namespace
# and reach everything through lb (docs/deploy.md).
#
# Used by `./polycrud cluster ...`, which builds and installs first; the
# command-line interface below is stable.
#
# Each daemon gets its configuration exported in a subshell that then
# becomes it; shellcheck takes those exports for changes that get lost.
# shellcheck disable=SC2030,SC2031
set -euo pipefail

readonly PROG=cluster.sh
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
readonly HERE ROOT
readonly HOSTS_SH=$HERE/hosts.sh
readonly CHECK_SH=$HERE/galera-check.sh
readonly STACK=$ROOT/deploy/local/stack.sh
readonly PREFIX=${POLYCRUD_CLUSTER_PREFIX:-pcl}
readonly SUBNET=${POLYCRUD_CLUSTER_SUBNET:-10.77.0}
readonly DIR=${POLYCRUD_CLUSTER_DIR:-$ROOT/.polycrud/cluster}
readonly SERVER_BIN=${POLYCRUD_SERVER_BIN:-$ROOT/build/server/polycrud-server}
readonly WEB_JS=$ROOT/web/bin/polycrud-web.js
# In address order: lb is SUBNET.1, app1 SUBNET.2, ..., client SUBNET.11,
# mq SUBNET.12 (added last, so the others kept their addresses).
readonly HOSTS=(lb app1 app2 web cache1 cache2 cache3 db1 db2 db3 client mq)
readonly CACHES=(cache1 cache2 cache3)
readonly DBS=(db1 db2 db3)
readonly APPS=(app1 app2)

# The same ports on every host (each host has an address of its own).
readonly THRIFT_PORT=9090 GRPC_PORT=50051 SOAP_PORT=8080 REST_PORT=8081 WEB_PORT=3000
readonly REDIS_PORTS=(7001 7002) MYSQL_PORT=3306 GALERA_PORT=4567 STATS_PORT=8404
readonly MYSQL_DATABASE=polycrud MYSQL_USER=polycrud REDIS_USER=polycrud
# RabbitMQ on mq has the host to itself: the usual AMQP, distribution and
# epmd ports.
readonly AMQP_PORT=5672 RABBITMQ_DIST_PORT=25672 EPMD_PORT=4369
readonly AMQP_USER=polycrud AMQP_VHOST=polycrud
# How long a server reports "draining" before it stops: more than HAProxy
# needs to see it (2 checks, 1 s apart).
readonly DRAIN_MS=3000
# The servers' near cache: on, since they consume the change events (the
# servers' own default); its entries' lifetime bounds what a client whose
# connection moves to the other server may read stale (docs/events.md).
readonly NEAR_CACHE_ENTRIES=${POLYCRUD_CLUSTER_NEAR_CACHE_ENTRIES:-100000} NEAR_CACHE_TTL_MS=1000
readonly START_TIMEOUT_S=60
readonly STOP_TIMEOUT_S=15

usage() {
  cat <<'EOF'
Usage: cluster.sh COMMAND ...

  up                      make the hosts and start every daemon (see below),
                          form the Redis Cluster and the Galera cluster,
                          migrate, write DIR/endpoints.env; a failed up
                          removes what it made
  down                    stop every daemon, delete the hosts and DIR
  status                  every host's daemons, cluster_state of Redis,
                          each Galera node's state, HAProxy's backends, the
                          database writer and the partitions in place
  kill HOST               SIGKILL every process of HOST (a crashed machine)
  restart HOST            start HOST's daemons again (a Galera node rejoins,
                          a Redis node rejoins its cluster)
  partition HOST_A HOST_B drop every packet between the two hosts, both ways,
                          on arrival (connections in place stall, new ones
                          time out)
  heal                    remove every partition
  latency DELAY           add DELAY (e.g. 0.3ms; "off") to every packet a
                          host sends (tc netem, where the kernel has it)
  exec HOST CMD...        run CMD inside HOST's namespace

Hosts (addresses SUBNET.1 to SUBNET.12, in this order):
  lb      HAProxy: Thrift 9090 (TCP), gRPC 50051 (HTTP/2), SOAP 8080 and
          REST 8081 (HTTP) to app1 and app2, checked on /readyz/serving; MariaDB
          3306 to one Galera writer (db1, the others as backups, checked on
          wsrep_ready and wsrep_local_state); stats on 8404
  app1    polycrud-server (all faces), drains for 3 s on SIGTERM; change
          events to RabbitMQ on mq
  app2    the same
  web     the web console on 3000, Thrift through lb
  cache1  Redis Cluster nodes on 7001 and 7002: a master and a replica of
  cache2  another host's master on each
  cache3
  db1     MariaDB Galera nodes on 3306 (Galera 4567-4569)
  db2
  db3
  client  nothing: clients run here (ip netns exec PREFIX-client ...)
  mq      RabbitMQ on 5672 (AMQP; Erlang distribution 25672, epmd 4369),
          user and vhost polycrud, no guest, no plugins

Environment:
  POLYCRUD_CLUSTER_DIR      state folder (default .polycrud/cluster)
  POLYCRUD_CLUSTER_PREFIX   namespace names PREFIX-HOST (default pcl)
  POLYCRUD_CLUSTER_SUBNET   a private /24 (default 10.77.0)
  POLYCRUD_SERVER_BIN       polycrud-server (default build/server/...)
  POLYCRUD_CLUSTER_BUFFER_POOL     each Galera node's buffer pool (512M)
  POLYCRUD_CLUSTER_REDIS_MAXMEMORY each Redis node's maxmemory (1gb)
  POLYCRUD_CLUSTER_NEAR_CACHE_ENTRIES  the servers' near cache (default 100000;
                                   0: off)
  POLYCRUD_CLUSTER_ADMIN_TOKEN     the admin token (default: a random one, in
                                   DIR/admin-token)
  POLYCRUD_CLUSTER_READER_TOKEN    the reader token (DIR/reader-token)
EOF
}

die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}
usage_error() {
  printf '%s: %s\nRun "%s --help" for usage.\n' "$PROG" "$*" "$PROG" >&2
  exit 2
}
step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }

# The address of HOST.
addr() {
  local i
  for i in "${!HOSTS[@]}"; do
    if [[ ${HOSTS[$i]} == "$1" ]]; then
      printf '%s.%d\n' "$SUBNET" $((i + 1))
      return 0
    fi
  done
  return 1
}

check_host() {
  addr "$1" >/dev/null || usage_error "unknown host '$1' (${HOSTS[*]})"
}

ns() { printf '%s-%s\n' "$PREFIX" "$1"; }

in_host() {
  local host=$1
  shift
  ip netns exec "$(ns "$host")" "$@"
}

is_up() { [[ -n $("$HOSTS_SH" list "$PREFIX") ]]; }

# The first line of FILE.
first_line() {
  local line=
  IFS= read -r line <"$1" || [[ -n $line ]]
  printf '%s' "$line"
}

# DIR/NAME with a random secret, made once (0600); the admin and reader
# tokens may be given (POLYCRUD_CLUSTER_ADMIN_TOKEN, ..._READER_TOKEN).
secret() {
  local file=$DIR/$1 given=
  case $1 in
    admin-token) given=${POLYCRUD_CLUSTER_ADMIN_TOKEN:-} ;;
    reader-token) given=${POLYCRUD_CLUSTER_READER_TOKEN:-} ;;
  esac
  if [[ -n $given && ! -s $file ]]; then
    (umask 077 && printf '%s\n' "$given" >"$file")
  fi
  if [[ ! -s $file ]]; then
    (umask 077 && od -An -vtx1 -N24 /dev/urandom | tr -d ' \n' >"$file.tmp" && echo >>"$file.tmp")
    mv -f "$file.tmp" "$file"
  fi
  first_line "$file"
}

sha256_hex() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# True if PID (in FILE) is alive.
pid_file_alive() {
  local pid=
  [[ -s $1 ]] || return 1
  pid=$(first_line "$1")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# Waits up to SECONDS for "$@" to succeed.
wait_for() {
  local seconds=$1 deadline
  shift
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# True if HOST accepts TCP connections on ADDR:PORT, tried from HOST itself.
port_open_in() {
  in_host "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null
}

# ------------------------------------------------------------- Redis ----

redis_env() {
  printf '%s\n' "POLYCRUD_BIND_ADDRESS=$(addr "$1")" POLYCRUD_REDIS_CLUSTER=1 \
    "POLYCRUD_REDIS_PASSWORD=$(secret redis-password)" \
    "POLYCRUD_REDIS_ADMIN_PASSWORD=$(secret redis-admin-password)" \
    "POLYCRUD_REDIS_MAXMEMORY=${POLYCRUD_CLUSTER_REDIS_MAXMEMORY:-1gb}"
}

start_redis() {
  local host=$1 port env
  mapfile -t env < <(redis_env "$host")
  for port in "${REDIS_PORTS[@]}"; do
    in_host "$host" env "${env[@]}" "$STACK" redis start "$DIR/$host/redis-$port" "$port" |
      sed 's/^/    /'
  done
}

# redis-cli as admin against ADDR:PORT, run in the client namespace.
redis_admin() {
  local address=$1 port=$2
  shift 2
  REDISCLI_AUTH=$(secret redis-admin-password) in_host client \
    redis-cli --no-auth-warning --user admin -h "$address" -p "$port" "$@"
}

redis_nodes() {
  local host port list=
  for port in "${REDIS_PORTS[@]}"; do
    for host in "${CACHES[@]}"; do
      list+=${list:+,}$(addr "$host"):$port
    done
  done
  printf '%s\n' "$list"
}

cluster_ok_on() {
  [[ $(redis_admin "$1" "$2" cluster info 2>/dev/null | tr -d '\r' | grep '^cluster_state:') == \
    cluster_state:ok ]]
}

form_redis_cluster() {
  local nodes=() node
  IFS=, read -r -a nodes <<<"$(redis_nodes)"
  step "forming the Redis Cluster (3 masters, 3 replicas)"
  # Masters are the first three (port 7001); redis-cli places each replica
  # on a host other than its master's.
  REDISCLI_AUTH=$(secret redis-admin-password) in_host client \
    redis-cli --no-auth-warning --user admin --cluster create "${nodes[@]}" \
    --cluster-replicas 1 --cluster-yes >"$DIR/redis-cluster-create.log" 2>&1 ||
    {
      tail -n 20 "$DIR/redis-cluster-create.log" >&2
      die "redis-cli --cluster create failed (log: $DIR/redis-cluster-create.log)"
    }
  for node in "${nodes[@]}"; do
    wait_for 30 cluster_ok_on "${node%:*}" "${node#*:}" ||
      die "Redis node $node did not reach cluster_state:ok within 30 s"
  done
  note "cluster_state:ok on all six nodes"
}

# ----------------------------------------------------------- MariaDB ----

galera_peers() {
  local host list=
  for host in "${DBS[@]}"; do
    list+=${list:+,}$(addr "$host"):$GALERA_PORT
  done
  printf '%s\n' "$list"
}

db_running() { pid_file_alive "$DIR/$1/mariadb/mysqld.pid"; }

# start_db HOST [new]: "new" starts a new cluster (the first node only).
start_db() {
  local host=$1 mode=${2:-join} other alive=0
  local -a env=("POLYCRUD_BIND_ADDRESS=$(addr "$host")" "POLYCRUD_GALERA_PEERS=$(galera_peers)"
    "POLYCRUD_GALERA_PORT=$GALERA_PORT" "POLYCRUD_GALERA_NODE_NAME=$host"
    "POLYCRUD_MARIADB_BUFFER_POOL=${POLYCRUD_CLUSTER_BUFFER_POOL:-512M}")
  if [[ $mode == join ]]; then
    for other in "${DBS[@]}"; do
      [[ $other != "$host" ]] && db_running "$other" && alive=1
    done
    if ((!alive)); then
      # No node runs: this one starts the cluster again from its own data.
      mode=new
      printf '%s: no other Galera node runs; %s starts the cluster again\n' "$PROG" "$host"
      sed -i 's/^safe_to_bootstrap: 0$/safe_to_bootstrap: 1/' \
        "$DIR/$host/mariadb/data/grastate.dat" 2>/dev/null || true
    fi
  fi
  [[ $mode == new ]] && env+=(POLYCRUD_GALERA_NEW_CLUSTER=1)
  in_host "$host" env "${env[@]}" "$STACK" mariadb start "$DIR/$host/mariadb" "$MYSQL_PORT" |
    sed 's/^/    /'
}

# SQL as MariaDB's root on HOST (Unix socket).
db_root() {
  local host=$1
  shift
  in_host "$host" mariadb --defaults-file="$DIR/$host/mariadb/my.cnf" --batch \
    --skip-column-names "$@"
}

bootstrap_db() {
  local check
  step "creating database $MYSQL_DATABASE, its user and the balancer's check account"
  POLYCRUD_MYSQL_CLIENT_HOSTS="$SUBNET.% localhost" "$STACK" mariadb bootstrap \
    "$DIR/db1/mariadb" "$MYSQL_DATABASE" "$MYSQL_USER" <"$DIR/mysql-password" | sed 's/^/    /'
  check=$(secret check-password)
  # No privileges at all: it reads the node's status, from lb only.
  db_root db1 <<EOF
CREATE USER IF NOT EXISTS 'haproxy_check'@'$(addr lb)' IDENTIFIED BY '$check';
ALTER USER 'haproxy_check'@'$(addr lb)' IDENTIFIED BY '$check';
EOF
}

# ----------------------------------------------------------- HAProxy ----

write_haproxy_config() {
  local app db first=1 http
  mkdir -p "$DIR/lb"
  {
    cat <<EOF
# Written by deploy/cluster/cluster.sh; edits are overwritten.
global
  maxconn 8000
  pidfile $DIR/lb/haproxy.pid
  stats socket $DIR/lb/haproxy.sock mode 600 level admin
  # The Galera check runs the mariadb client (external-check).
  external-check
  insecure-fork-wanted

defaults
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout check 2s
  default-server inter 1s fall 2 rise 2

# Thrift: framed binary over TCP, to the server with the fewest connections.
listen thrift
  bind $(addr lb):$THRIFT_PORT
  mode tcp
  balance leastconn
  option httpchk GET /readyz/serving
  http-check expect status 200
EOF
    for app in "${APPS[@]}"; do
      echo "  server $app $(addr "$app"):$THRIFT_PORT check port $REST_PORT on-marked-down shutdown-sessions"
    done
    cat <<EOF

# gRPC: HTTP/2 cleartext on both sides; each call balanced on its own.
listen grpc
  bind $(addr lb):$GRPC_PORT proto h2
  mode http
  balance roundrobin
  option httpchk GET /readyz/serving
  http-check expect status 200
EOF
    for app in "${APPS[@]}"; do
      echo "  server $app $(addr "$app"):$GRPC_PORT proto h2 check port $REST_PORT check-proto h1"
    done
    for http in soap:$SOAP_PORT rest:$REST_PORT; do
      cat <<EOF

listen ${http%%:*}
  bind $(addr lb):${http#*:}
  mode http
  balance roundrobin
  option httpchk GET /readyz/serving
  http-check expect status 200
  # Only a request that never reached a server is tried on the other one:
  # a write must not run twice.
  retries 2
  option redispatch
  retry-on conn-failure
EOF
      for app in "${APPS[@]}"; do
        echo "  server $app $(addr "$app"):${http#*:} check port $REST_PORT"
      done
    done
    cat <<EOF

# MariaDB: one Galera writer at a time. Every connection sticks to the same
# node (a one-entry stick table), and stays there after a failover instead
# of moving back when the first node returns; connections to a node marked
# down are cut, so pools reconnect to the new writer at once.
listen mysql
  bind $(addr lb):$MYSQL_PORT
  mode tcp
  timeout client 8h
  timeout server 8h
  option external-check
  external-check path "/usr/bin:/bin"
  external-check command $DIR/lb/galera-check
  stick-table type integer size 1
  stick on int(1)
EOF
    for db in "${DBS[@]}"; do
      printf '  server %s %s:%s check on-marked-down shutdown-sessions%s\n' "$db" "$(addr "$db")" \
        "$MYSQL_PORT" "$( ((first)) || printf ' backup')"
      first=0
    done
    cat <<EOF

listen stats
  bind $(addr lb):$STATS_PORT
  mode http
  stats enable
  stats uri /stats
  stats refresh 2s
EOF
  } >"$DIR/lb/haproxy.cfg"
  # HAProxy gives a check command no arguments of ours and no environment:
  # a wrapper names the password file.
  cat >"$DIR/lb/galera-check" <<EOF
#!/bin/sh
POLYCRUD_GALERA_CHECK_PASSWORD_FILE='$DIR/check-password' exec '$CHECK_SH' "\$@"
EOF
  chmod 700 "$DIR/lb/galera-check"
  haproxy -c -q -f "$DIR/lb/haproxy.cfg" || die "HAProxy refuses $DIR/lb/haproxy.cfg"
}

start_lb() {
  if pid_file_alive "$DIR/lb/haproxy.pid"; then
    note "haproxy already running"
    return 0
  fi
  command -v haproxy >/dev/null || die "haproxy not found; install it with ./polycrud setup"
  write_haproxy_config
  in_host lb haproxy -D -f "$DIR/lb/haproxy.cfg" >>"$DIR/lb/haproxy.log" 2>&1 || {
    tail -n 20 "$DIR/lb/haproxy.log" >&2
    die "haproxy failed to start (log: $DIR/lb/haproxy.log)"
  }
  wait_for 10 pid_file_alive "$DIR/lb/haproxy.pid" || die "haproxy wrote no pid file"
  note "haproxy running on $(addr lb) (pid $(first_line "$DIR/lb/haproxy.pid"))"
}

# HAProxy's view: "proxy server status" lines.
lb_backends() {
  in_host client curl -s --max-time 2 "http://$(addr lb):$STATS_PORT/stats;csv" |
    awk -F, '$1 != "# pxname" && $2 != "FRONTEND" && $2 != "BACKEND" && $1 != "stats" {print $1, $2, $18}'
}

backend_up() { lb_backends | grep -q "^$1 $2 UP"; }

# The Galera node the balancer sends database connections to.
writer() {
  MYSQL_PWD=$(secret mysql-password) in_host client timeout 3 mariadb --no-defaults \
    --protocol=tcp -h "$(addr lb)" -P "$MYSQL_PORT" -u "$MYSQL_USER" --connect-timeout=2 \
    --batch --skip-column-names -e 'SELECT @@wsrep_node_name' 2>/dev/null
}

# ---------------------------------------------------------- RabbitMQ ----

mq_dir() { printf '%s\n' "$DIR/mq/rabbitmq"; }

# RabbitMQ on mq, on the host's address; stack.sh starts its epmd, waits
# until it serves and locks it down (the user polycrud on its vhost only).
start_mq() {
  mkdir -p "$DIR/mq"
  (
    # The password travels in the environment, never on a command line.
    POLYCRUD_AMQP_PASSWORD=$(secret amqp-password)
    POLYCRUD_BIND_ADDRESS=$(addr mq)
    export POLYCRUD_AMQP_PASSWORD POLYCRUD_BIND_ADDRESS
    export POLYCRUD_AMQP_VHOST=$AMQP_VHOST POLYCRUD_RABBITMQ_DIST_PORT=$RABBITMQ_DIST_PORT
    export POLYCRUD_RABBITMQ_EPMD_PORT=$EPMD_PORT
    in_host mq "$STACK" rabbitmq start "$(mq_dir)" "$AMQP_PORT"
  ) | sed 's/^/    /'
}

# rabbitmqctl against the broker, from mq itself (its cookie is in DIR/mq).
mq_ctl() {
  in_host mq "$STACK" rabbitmq ctl "$(mq_dir)" --quiet "$@" </dev/null
}

# ------------------------------------------------------- server, web ----

start_app() {
  local host=$1 log=$DIR/$1/server.log pid
  mkdir -p "$DIR/$host"
  if pid_file_alive "$DIR/$host/server.pid"; then
    note "polycrud-server already running on $host"
    return 0
  fi
  [[ -x $SERVER_BIN ]] || die "$SERVER_BIN not found; build it first (./polycrud build)"
  printf '\n===== %s cluster.sh =====\n' "$(date '+%F %T')" >>"$log"
  # The configuration travels in the environment, never on the command line.
  (
    # Assigned before they are exported, so a failed lookup ends the start.
    POLYCRUD_BIND=$(addr "$host")
    POLYCRUD_MYSQL_HOST=$(addr lb)
    POLYCRUD_MYSQL_PASSWORD=$(secret mysql-password)
    POLYCRUD_REDIS_CLUSTER=$(redis_nodes)
    POLYCRUD_REDIS_PASSWORD=$(secret redis-password)
    # Change events go to RabbitMQ on mq (API.md, "Change events").
    POLYCRUD_AMQP_HOST=$(addr mq)
    POLYCRUD_AMQP_PASSWORD=$(secret amqp-password)
    POLYCRUD_ADMIN_TOKEN_SHA256=$(sha256_hex "$(secret admin-token)")
    POLYCRUD_READER_TOKEN_SHA256=$(sha256_hex "$(secret reader-token)")
    export POLYCRUD_BIND POLYCRUD_MYSQL_HOST POLYCRUD_MYSQL_PASSWORD POLYCRUD_REDIS_CLUSTER \
      POLYCRUD_REDIS_PASSWORD POLYCRUD_AMQP_HOST POLYCRUD_AMQP_PASSWORD \
      POLYCRUD_ADMIN_TOKEN_SHA256 POLYCRUD_READER_TOKEN_SHA256
    export POLYCRUD_THRIFT_PORT=$THRIFT_PORT POLYCRUD_GRPC_PORT=$GRPC_PORT
    export POLYCRUD_SOAP_PORT=$SOAP_PORT POLYCRUD_REST_PORT=$REST_PORT
    export POLYCRUD_MYSQL_PORT=$MYSQL_PORT POLYCRUD_MYSQL_USER=$MYSQL_USER
    export POLYCRUD_MYSQL_DATABASE=$MYSQL_DATABASE POLYCRUD_REDIS_USER=$REDIS_USER
    export POLYCRUD_AMQP_PORT=$AMQP_PORT POLYCRUD_AMQP_USER=$AMQP_USER
    export POLYCRUD_AMQP_VHOST=$AMQP_VHOST POLYCRUD_DRAIN_MS=$DRAIN_MS
    export POLYCRUD_NEAR_CACHE_ENTRIES=$NEAR_CACHE_ENTRIES
    export POLYCRUD_NEAR_CACHE_TTL_MS=$NEAR_CACHE_TTL_MS
    cd "$DIR/$host"
    exec ip netns exec "$(ns "$host")" setsid "$SERVER_BIN" </dev/null
  ) >>"$log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$DIR/$host/server.pid"
  if ! wait_for "$START_TIMEOUT_S" port_open_in "$host" "$(addr "$host")" "$REST_PORT"; then
    tail -n 20 "$log" >&2
    die "polycrud-server on $host did not open its ports within $START_TIMEOUT_S s (log: $log)"
  fi
  note "polycrud-server on $host (pid $pid), log $log"
}

start_web() {
  local log=$DIR/web/web.log pid
  mkdir -p "$DIR/web"
  if pid_file_alive "$DIR/web/web.pid"; then
    note "web console already running"
    return 0
  fi
  (
    POLYCRUD_WEB_HOST=$(addr web)
    POLYCRUD_THRIFT_HOST=$(addr lb)
    export POLYCRUD_WEB_HOST POLYCRUD_THRIFT_HOST
    export POLYCRUD_WEB_PORT=$WEB_PORT POLYCRUD_THRIFT_PORT=$THRIFT_PORT
    cd "$DIR/web"
    exec ip netns exec "$(ns web)" setsid node "$WEB_JS" </dev/null
  ) >>"$log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$DIR/web/web.pid"
  wait_for 30 port_open_in web "$(addr web)" "$WEB_PORT" ||
    die "the web console did not open port $WEB_PORT within 30 s (log: $log)"
  note "web console on $(addr web):$WEB_PORT (pid $pid)"
}

# ------------------------------------------------------------ hosts ----

# Starts what runs on HOST (each start is idempotent).
start_host() {
  case $1 in
    lb) start_lb ;;
    app1 | app2) start_app "$1" ;;
    web) start_web ;;
    cache*) start_redis "$1" ;;
    db*) start_db "$1" ;;
    mq) start_mq ;;
    client) ;;
  esac
}

# Every process in HOST's namespace gets SIGNAL; with TERM, SIGKILL follows
# after STOP_TIMEOUT_S for any left.
signal_host() {
  local host=$1 signal=$2 pids deadline
  pids=$(ip netns pids "$(ns "$host")" 2>/dev/null | tr '\n' ' ')
  [[ -n ${pids// /} ]] || return 0
  # shellcheck disable=SC2086
  kill -"$signal" $pids 2>/dev/null || true
  [[ $signal == TERM ]] || return 0
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  while [[ -n $(ip netns pids "$(ns "$host")" 2>/dev/null) ]] && ((SECONDS < deadline)); do
    sleep 0.2
  done
  pids=$(ip netns pids "$(ns "$host")" 2>/dev/null | tr '\n' ' ')
  # shellcheck disable=SC2086
  [[ -z ${pids// /} ]] || kill -KILL $pids 2>/dev/null || true
}

write_endpoints() {
  local host pairs='' dbs=''
  for host in "${HOSTS[@]}"; do pairs+=${pairs:+,}$host=$(ns "$host"); done
  for host in "${DBS[@]}"; do dbs+=${dbs:+,}$(addr "$host"):$MYSQL_PORT; done
  (
    umask 077
    cat >"$DIR/endpoints.env.tmp" <<EOF
CLIENT_NETNS=$(ns client)
THRIFT_HOST=$(addr lb)
THRIFT_PORT=$THRIFT_PORT
GRPC_HOST=$(addr lb)
GRPC_PORT=$GRPC_PORT
SOAP_HOST=$(addr lb)
SOAP_PORT=$SOAP_PORT
REST_HOST=$(addr lb)
REST_PORT=$REST_PORT
WEB_HOST=$(addr web)
WEB_PORT=$WEB_PORT
REDIS_NODES=$(redis_nodes)
REDIS_USER=$REDIS_USER
REDIS_PASSWORD=$(secret redis-password)
MYSQL_NODES=$dbs
MYSQL_HOST=$(addr lb)
MYSQL_PORT=$MYSQL_PORT
MYSQL_USER=$MYSQL_USER
MYSQL_PASSWORD=$(secret mysql-password)
MYSQL_DATABASE=$MYSQL_DATABASE
AMQP_HOST=$(addr mq)
AMQP_PORT=$AMQP_PORT
AMQP_USER=$AMQP_USER
AMQP_PASSWORD=$(secret amqp-password)
AMQP_VHOST=$AMQP_VHOST
NEAR_CACHE_ENTRIES=$NEAR_CACHE_ENTRIES
NEAR_CACHE_TTL_MS=$NEAR_CACHE_TTL_MS
HOSTS=$pairs
EOF
  )
  mv -f "$DIR/endpoints.env.tmp" "$DIR/endpoints.env"
}

# ---------------------------------------------------------- commands ----

cmd_up() {
  local host started
  is_up && die "the cluster is up already (cluster.sh status; cluster.sh down removes it)"
  started=$SECONDS
  mkdir -p "$DIR"
  # The Galera nodes run as mysql, which must reach their folders (the
  # parent keeps its files to itself; it only lets mysql pass).
  chmod 755 "$DIR"
  runuser -u mysql -- test -x "$DIR" 2>/dev/null || chmod o+x "$(dirname "$DIR")"
  runuser -u mysql -- test -x "$DIR" ||
    die "the mysql user cannot reach $DIR (the Galera nodes run as mysql)"
  # Whatever ends the command before the end (a failed step, die, a
  # signal) removes what it made.
  trap 'up_failed' EXIT
  for host in admin-token reader-token mysql-password redis-password redis-admin-password \
    check-password amqp-password; do
    secret "$host" >/dev/null
  done
  step "making the hosts: namespaces $PREFIX-* on a private switch, $SUBNET.0/24"
  "$HOSTS_SH" up "$PREFIX" "$SUBNET" "${HOSTS[@]}" | sed 's/^hosts.sh: /    /'
  step "starting Redis on cache1-cache3"
  for host in "${CACHES[@]}"; do start_redis "$host"; done
  form_redis_cluster
  step "starting MariaDB Galera on db1-db3 (db1 starts the cluster, the others join)"
  start_db db1 new
  start_db db2
  start_db db3
  bootstrap_db
  step "starting HAProxy on lb"
  start_lb
  wait_for 30 backend_up mysql db1 || die "HAProxy does not see db1 as a serving Galera node"
  step "starting RabbitMQ on mq (the servers publish their change events there)"
  start_mq
  step "starting polycrud-server on app1 and app2 (each migrates under the migration lease)"
  start_app app1 &
  local first=$!
  start_app app2
  wait "$first"
  local proxy
  for host in "${APPS[@]}"; do
    for proxy in thrift grpc soap rest; do
      wait_for 30 backend_up "$proxy" "$host" ||
        die "HAProxy does not see $host serving $proxy (its /readyz/serving)"
    done
  done
  step "starting the web console on web"
  start_web
  write_endpoints
  trap - EXIT
  step "the cluster is up ($((SECONDS - started)) s)"
  cmd_status
}

up_failed() {
  printf '%s: up failed; removing what it made\n' "$PROG" >&2
  cmd_down >/dev/null 2>&1 || true
}

cmd_down() {
  local host
  if is_up; then
    step "stopping every daemon"
    # Clients and servers first, then what they use.
    for host in client web lb app1 app2 mq cache1 cache2 cache3 db1 db2 db3; do
      signal_host "$host" TERM
    done
    step "deleting the hosts ($PREFIX-*)"
    "$HOSTS_SH" down "$PREFIX"
  fi
  # Only the cluster's own folder, and only if it looks like one.
  if [[ -d $DIR && ( -e $DIR/admin-token || -e $DIR/endpoints.env || -d $DIR/lb ) ]]; then
    rm -rf "$DIR"
    note "removed $DIR"
  fi
}

cmd_status() {
  local host pids what port node line
  is_up || {
    echo "the cluster is down (no namespaces $PREFIX-*)"
    return 3
  }
  step "hosts"
  for host in "${HOSTS[@]}"; do
    pids=$(ip netns pids "$(ns "$host")" 2>/dev/null | wc -l)
    what=
    case $host in
      lb) pid_file_alive "$DIR/lb/haproxy.pid" && what="haproxy" || what="haproxy DOWN" ;;
      app*) pid_file_alive "$DIR/$host/server.pid" && what="polycrud-server" ||
        what="polycrud-server DOWN" ;;
      web) pid_file_alive "$DIR/web/web.pid" && what="web console" || what="web console DOWN" ;;
      cache*)
        for port in "${REDIS_PORTS[@]}"; do
          if pid_file_alive "$DIR/$host/redis-$port/redis.pid"; then
            what+="redis:$port($(redis_admin "$(addr "$host")" "$port" role 2>/dev/null | head -n 1)) "
          else
            what+="redis:$port DOWN "
          fi
        done
        ;;
      db*)
        if db_running "$host"; then
          what="mariadb $(db_root "$host" -e "SELECT CONCAT(
            (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE_COMMENT'),
            ' cluster_size=', (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'),
            ' ', (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_STATUS'))" 2>/dev/null ||
            echo '(no answer)')"
        else
          what="mariadb DOWN"
        fi
        ;;
      mq)
        # stack.sh knows a killed node (a zombie until reaped) for dead.
        if in_host mq "$STACK" rabbitmq status "$(mq_dir)" >/dev/null; then
          what="rabbitmq $(mq_ctl list_connections --no-table-headers user 2>/dev/null | grep -c . ||
            true) connections, $(mq_ctl list_queues -p "$AMQP_VHOST" --no-table-headers messages \
            2>/dev/null | awk '{n++; m += $1} END {printf "%d queues, %d messages waiting", n, m}')"
        else
          what="rabbitmq DOWN"
        fi
        ;;
      client) what="(clients)" ;;
    esac
    printf '    %-7s %-12s %-3s processes  %s\n' "$host" "$(addr "$host")" "$pids" "$what"
  done
  step "Redis Cluster"
  for node in $(redis_nodes | tr ',' ' '); do
    line=$(redis_admin "${node%:*}" "${node#*:}" cluster info 2>/dev/null | tr -d '\r' |
      grep -E '^cluster_(state|known_nodes|size):' | tr '\n' ' ') || true
    if [[ -n $line ]]; then
      note "seen from $node: $line"
      break
    fi
  done
  [[ -n ${line:-} ]] || note "no Redis node answers"
  step "HAProxy backends"
  lb_backends | awk '{printf "    %-7s %-6s %s\n", $1, $2, $3}' || note "HAProxy does not answer"
  step "database writer (through lb): $(writer || echo 'none answers')"
  step "partitions"
  local any=0
  for host in "${HOSTS[@]}"; do
    line=$(in_host "$host" nft list table inet polycrud_partition 2>/dev/null |
      grep -o 'saddr [0-9.]*' | awk '{print $2}' | tr '\n' ' ') || true
    if [[ -n $line ]]; then
      note "$host hears nothing from: $line"
      any=1
    fi
  done
  ((any)) || note "none"
}

cmd_kill() {
  check_host "$1"
  signal_host "$1" KILL
  echo "$PROG: killed every process on $1"
}

cmd_restart() {
  check_host "$1"
  step "starting $1 again"
  start_host "$1"
}

# HOST drops every packet that comes from ADDR. Only on the way in: a packet
# dropped on its way out fails the sender's call at once (EPERM), which a
# lost network never does; dropped on arrival, it is simply never answered.
block() {
  local host=$1 address=$2
  in_host "$host" nft -f - <<EOF
table inet polycrud_partition {
  chain in { type filter hook input priority 0; policy accept; }
}
add rule inet polycrud_partition in ip saddr $address drop
EOF
}

cmd_partition() {
  check_host "$1"
  check_host "$2"
  [[ $1 != "$2" ]] || usage_error "partition needs two different hosts"
  command -v nft >/dev/null || die "nft not found; install it with ./polycrud setup (nftables)"
  block "$1" "$(addr "$2")"
  block "$2" "$(addr "$1")"
  echo "$PROG: $1 and $2 no longer reach each other (heal removes it)"
}

cmd_heal() {
  local host
  for host in "${HOSTS[@]}"; do
    in_host "$host" nft delete table inet polycrud_partition 2>/dev/null || true
  done
  echo "$PROG: every partition removed"
}

cmd_latency() {
  local host
  for host in "${HOSTS[@]}"; do
    "$HOSTS_SH" latency "$PREFIX" "$host" "$1"
  done
  echo "$PROG: every host now adds $1 to what it sends"
}

main() {
  local command=${1:-}
  shift || true
  case $command in
    -h | --help | help)
      usage
      return 0
      ;;
  esac
  [[ ${1:-} == -h || ${1:-} == --help ]] && {
    usage
    return 0
  }
  [[ -n $command ]] || {
    usage >&2
    exit 2
  }
  [[ $EUID -eq 0 ]] || die "needs root (network namespaces)"
  case $command in
    up) (($# == 0)) || usage_error "up takes no arguments"; cmd_up ;;
    down) (($# == 0)) || usage_error "down takes no arguments"; cmd_down ;;
    status) (($# == 0)) || usage_error "status takes no arguments"; cmd_status ;;
    kill) (($# == 1)) || usage_error "kill HOST"; cmd_kill "$1" ;;
    restart) (($# == 1)) || usage_error "restart HOST"; cmd_restart "$1" ;;
    partition) (($# == 2)) || usage_error "partition HOST_A HOST_B"; cmd_partition "$1" "$2" ;;
    heal) (($# == 0)) || usage_error "heal takes no arguments"; cmd_heal ;;
    latency) (($# == 1)) || usage_error "latency DELAY"; cmd_latency "$1" ;;
    exec)
      (($# >= 2)) || usage_error "exec HOST CMD..."
      check_host "$1"
      local host=$1
      shift
      exec ip netns exec "$(ns "$host")" "$@"
      ;;
    *) usage_error "unknown command '$command'" ;;
  esac
}

main "$@"
