#!/usr/bin/env bash
# Hosts as network namespaces on one private switch, for the multi-host
# layout on one machine: every host is a namespace with one interface into
# a bridge that lives in a namespace of its own. Addresses exist only inside
# these namespaces; the machine's own namespace gets no address, no route and
# no interface, so nothing reaches or leaves the machine's network.
set -euo pipefail

readonly PROG=hosts.sh

usage() {
  cat <<'USAGE'
Usage: hosts.sh COMMAND ...

  hosts.sh up PREFIX SUBNET HOST...   make namespace PREFIX-sw with bridge br0
                                      and one namespace PREFIX-HOST per host,
                                      addressed SUBNET.1, SUBNET.2, ... (/24)
                                      in the order given (SUBNET: e.g. 10.77.0)
  hosts.sh down PREFIX                delete every namespace named PREFIX-*
                                      (also after a failed up)
  hosts.sh list PREFIX                the namespaces named PREFIX-*
  hosts.sh exec PREFIX HOST CMD...    run CMD inside PREFIX-HOST
  hosts.sh latency PREFIX HOST DELAY  add DELAY (e.g. 0.3ms; "off" removes
                                      it) to what HOST sends (tc netem)

Needs root (ip netns). Every host gets lo up and its address; no host has a
default route, so it reaches only the other hosts of the same PREFIX.
USAGE
}

die() {
  echo "$PROG: $*" >&2
  exit 1
}

check_name() {
  [[ $1 =~ ^[a-z0-9][a-z0-9-]{0,11}$ ]] || die "bad name '$1' (a-z 0-9 -, at most 12)"
}

namespaces() {
  ip netns list | awk '{print $1}' | grep -E "^$1-" || true
}

cmd_down() {
  local prefix=$1 ns
  check_name "$prefix"
  for ns in $(namespaces "$prefix"); do
    ip netns delete "$ns"
  done
}

cmd_up() {
  local prefix=$1 subnet=$2 host i=0 sw
  shift 2
  check_name "$prefix"
  [[ $subnet =~ ^(10|172|192)\.[0-9]{1,3}\.[0-9]{1,3}$ ]] ||
    die "SUBNET must be a private /24 prefix such as 10.77.0, not '$subnet'"
  (($# > 0 && $# < 250)) || die "give between 1 and 249 hosts"
  [[ -z $(namespaces "$prefix") ]] || die "namespaces $prefix-* exist already; run down first"
  for host in "$@"; do
    check_name "$host"
    [[ $host != sw ]] || die "'sw' is the switch's name"
  done
  sw=$prefix-sw
  # A failed up leaves nothing behind.
  trap 'cmd_down "$prefix"' ERR
  ip netns add "$sw"
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  for host in "$@"; do
    i=$((i + 1))
    ip netns add "$prefix-$host"
    # The veth is made inside the switch and its other end moved to the host.
    ip -n "$sw" link add "v-$host" type veth peer name eth0 netns "$prefix-$host"
    ip -n "$sw" link set "v-$host" master br0 up
    ip -n "$prefix-$host" link set lo up
    ip -n "$prefix-$host" addr add "$subnet.$i/24" dev eth0
    ip -n "$prefix-$host" link set eth0 up
    echo "$PROG: $prefix-$host $subnet.$i"
  done
  trap - ERR
}

case ${1:-} in
  up)
    (($# >= 4)) || { usage >&2; exit 2; }
    shift
    cmd_up "$@"
    ;;
  down)
    (($# == 2)) || { usage >&2; exit 2; }
    cmd_down "$2"
    ;;
  list)
    (($# == 2)) || { usage >&2; exit 2; }
    check_name "$2"
    namespaces "$2"
    ;;
  exec)
    (($# >= 4)) || { usage >&2; exit 2; }
    check_name "$2"
    check_name "$3"
    ns=$2-$3
    shift 3
    exec ip netns exec "$ns" "$@"
    ;;
  latency)
    (($# == 4)) || { usage >&2; exit 2; }
    check_name "$2"
    check_name "$3"
    if [[ $4 == off ]]; then
      ip -n "$2-$3" qdisc del dev eth0 root 2>/dev/null || true
    else
      [[ $4 =~ ^[0-9]+(\.[0-9]+)?(us|ms)$ ]] || die "DELAY like 0.3ms or 300us, not '$4'"
      if ! ip netns exec "$2-$3" tc qdisc replace dev eth0 root netem delay "$4" 2>/dev/null; then
        die "cannot add latency: this kernel has no netem queueing discipline (sch_netem)"
      fi
    fi
    ;;
  -h | --help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
