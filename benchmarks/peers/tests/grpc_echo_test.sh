#!/bin/bash
# polycrud-grpc-echo answers Ping and GetUser through the project's gRPC
# client (polycrud-bench), on both of its APIs, and stops on SIGTERM. (It
# checks no token: any will do.)
# usage: grpc_echo_test.sh ECHO_BIN BENCH_BIN
set -u
echo_bin=$1 bench_bin=$2
fail() { echo "FAIL: $*"; exit 1; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
for api in callback cq; do
  port=$(free_port)
  "$echo_bin" --port "$port" --api "$api" --threads 2 > /tmp/grpc_echo_test.$$ 2>&1 &
  pid=$!
  for _ in $(seq 50); do grep -q "API on" /tmp/grpc_echo_test.$$ && break; sleep 0.1; done
  grep -q "$api API on 127.0.0.1:$port" /tmp/grpc_echo_test.$$ || fail "$api: did not start: $(cat /tmp/grpc_echo_test.$$)"
  for op in ping get; do
    out=$("$bench_bin" --protocol grpc --port "$port" --token any --mix "$op=1" --keys uniform --min-id 1 \
          --max-id 100 --connections 2 --threads 1 --warmup-s 0.2 --duration-s 0.5 2>&1)
    line=$(echo "$out" | grep "window" | head -1)
    requests=$(echo "$line" | grep -oE "[0-9]+ requests" | grep -oE "[0-9]+")
    echo "$api $op: $line"
    [ -n "$requests" ] && [ "$requests" -gt 0 ] || fail "$api $op: no requests: $out"
    echo "$line" | grep -q " 0 errors" || fail "$api $op: errors: $out"
  done
  kill -TERM "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; fail "$api: still running 5 s after SIGTERM"; }
  wait "$pid" || fail "$api: exit status $? after SIGTERM"
done
rm -f /tmp/grpc_echo_test.$$
echo PASS
