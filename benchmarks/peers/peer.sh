#!/usr/bin/env bash
# Starts and stops the benchmark peers (a Python Thrift service and a Node.js
# Express REST service doing polycrud's cache-aside), by PID file.
set -euo pipefail

readonly PROG=peer.sh
readonly START_TIMEOUT_S=30
readonly STOP_TIMEOUT_S=10
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)
readonly HERE
readonly EXPRESS_DIR=$HERE/express
readonly PYTHON=/usr/bin/python3

usage() {
  cat <<'EOF'
Usage: peer.sh COMMAND ...

Runs the benchmark peers of polycrud, each on 127.0.0.1 only:
  python-thrift  benchmarks/peers/python_thrift/server.py (python3-thrift
                 TThreadPoolServer, framed binary protocol, redis-py, PyMySQL)
  express        benchmarks/peers/express/server.js (Node.js, Express, ioredis,
                 mysql2): the REST routes of API.md

Commands:
  peer.sh start PEER STATE_DIR PORT
        start PEER detached (setsid) on PORT; pid file STATE_DIR/PEER.pid, log
        STATE_DIR/PEER.log. Waits until PORT accepts connections (30 s); on
        failure prints the log tail and exits 1. A peer already running from
        STATE_DIR is an error.
  peer.sh stop PEER STATE_DIR
        SIGTERM by pid, SIGKILL after 10 s; harmless when nothing runs. Refuses
        to signal a pid whose /proc/PID/comm is not python3 or node.
  peer.sh pid PEER STATE_DIR
        print the running peer's pid; exit 3 when it does not run
  peer.sh install
        npm ci in benchmarks/peers/express when node_modules is missing or
        older than package-lock.json

Configuration comes from the environment, which the caller exports:
  POLYCRUD_MYSQL_HOST, POLYCRUD_MYSQL_PORT, POLYCRUD_MYSQL_USER,
  POLYCRUD_MYSQL_PASSWORD, POLYCRUD_MYSQL_DATABASE, POLYCRUD_REDIS_HOST,
  POLYCRUD_REDIS_PORT, POLYCRUD_REDIS_USER, POLYCRUD_REDIS_PASSWORD,
  POLYCRUD_ADMIN_TOKEN_SHA256, POLYCRUD_READER_TOKEN_SHA256
  and the peers' own PEER_* settings (see each server's --help), e.g.
  PEER_THREADS, PEER_THRIFT_SERVER, PEER_WORKERS, PEER_MYSQL_POOL_SIZE.
  PORT given to start overrides PEER_PORT. PEER_BIND is forced to 127.0.0.1.

Exit codes: 0 ok, 1 failure, 2 usage, 3 (pid) not running.
EOF
}

die() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  exit 1
}

usage_error() {
  printf '%s: %s (see --help)\n' "$PROG" "$*" >&2
  exit 2
}

check_peer() {
  case $1 in
    python-thrift | express) ;;
    *) usage_error "unknown peer '$1' (python-thrift or express)" ;;
  esac
}

# The process name the peer's pid must carry.
peer_comm() {
  case $1 in
    python-thrift) echo python3 ;;
    express) echo node ;;
  esac
}

# Prints the pid of PEER in STATE_DIR if that process runs and is the peer.
running_pid() {
  local peer=$1 dir=$2 pid comm
  [[ -f $dir/$peer.pid ]] || return 1
  pid=$(<"$dir/$peer.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/comm ]] || return 1
  comm=$(<"/proc/$pid/comm")
  if [[ $comm != "$(peer_comm "$peer")" ]]; then
    printf '%s: pid %s in %s is "%s", not %s: not touching it\n' \
      "$PROG" "$pid" "$dir/$peer.pid" "$comm" "$(peer_comm "$peer")" >&2
    return 1
  fi
  echo "$pid"
}

# True while PID runs (a zombie that has not been reaped counts as gone).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

node_modules_current() {
  [[ -d $EXPRESS_DIR/node_modules ]] &&
    [[ -f $EXPRESS_DIR/node_modules/.package-lock.json ]] &&
    [[ ! $EXPRESS_DIR/package-lock.json -nt $EXPRESS_DIR/node_modules/.package-lock.json ]]
}

cmd_install() {
  command -v npm >/dev/null 2>&1 || die "npm is not installed (Node.js 18 or newer is needed)"
  if node_modules_current; then
    echo "$PROG: express peer dependencies are installed"
    return 0
  fi
  echo "$PROG: installing the express peer's npm dependencies (npm ci)"
  (cd "$EXPRESS_DIR" && npm ci --omit=dev --no-audit --no-fund --loglevel=error) ||
    die "npm ci failed in $EXPRESS_DIR"
}

cmd_start() {
  (($# == 3)) || usage_error "start needs PEER STATE_DIR PORT"
  local peer=$1 dir=$2 port=$3 pid log deadline
  check_peer "$peer"
  if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    usage_error "bad port '$port'"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  if pid=$(running_pid "$peer" "$dir" 2>/dev/null); then
    die "$peer already runs from $dir (pid $pid)"
  fi
  if port_open "$port"; then
    die "port $port is already in use"
  fi
  log=$dir/$peer.log
  local -a cmd
  case $peer in
    python-thrift)
      [[ -x $PYTHON ]] || die "$PYTHON is not installed"
      cmd=("$PYTHON" "$HERE/python_thrift/server.py")
      ;;
    express)
      command -v node >/dev/null 2>&1 || die "node is not installed"
      node_modules_current ||
        die "the express peer's npm dependencies are missing or stale: run '$HERE/peer.sh install'"
      cmd=(node "$EXPRESS_DIR/server.js")
      ;;
  esac
  PEER_PORT=$port PEER_BIND=127.0.0.1 NODE_ENV=production \
    setsid "${cmd[@]}" </dev/null >>"$log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/$peer.pid"
  deadline=$((SECONDS + START_TIMEOUT_S))
  until port_open "$port"; do
    if ! alive "$pid"; then
      rm -f "$dir/$peer.pid"
      printf '%s: %s exited during start-up; last lines of %s:\n' "$PROG" "$peer" "$log" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      printf '%s: %s did not open port %s within %s s; last lines of %s:\n' \
        "$PROG" "$peer" "$port" "$START_TIMEOUT_S" "$log" >&2
      tail -n 20 "$log" >&2
      kill -TERM "$pid" 2>/dev/null || true
      rm -f "$dir/$peer.pid"
      exit 1
    fi
    sleep 0.1
  done
  echo "$PROG: $peer started (pid $pid, port $port, log $log)"
}

cmd_stop() {
  (($# == 2)) || usage_error "stop needs PEER STATE_DIR"
  local peer=$1 dir=$2 pid deadline
  check_peer "$peer"
  if ! pid=$(running_pid "$peer" "$dir"); then
    rm -f "$dir/$peer.pid"
    echo "$PROG: $peer is not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  while alive "$pid"; do
    if ((SECONDS >= deadline)); then
      echo "$PROG: $peer (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT_S} s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "$dir/$peer.pid"
  echo "$PROG: $peer stopped (pid $pid)"
}

cmd_pid() {
  (($# == 2)) || usage_error "pid needs PEER STATE_DIR"
  check_peer "$1"
  running_pid "$1" "$2" || exit 3
}

main() {
  (($# > 0)) || usage_error "no command"
  local command=$1
  shift
  case $command in
    -h | --help | help) usage ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    pid) cmd_pid "$@" ;;
    install)
      (($# == 0)) || usage_error "install takes no arguments"
      cmd_install
      ;;
    *) usage_error "unknown command '$command'" ;;
  esac
}

main "$@"
