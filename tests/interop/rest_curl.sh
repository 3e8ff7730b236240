#!/usr/bin/env bash
# Interop: curl, a client the project did not write, drives the REST face of
# a real polycrud-server (started here, on the test stack's MariaDB and
# Redis): a create/get/update/delete round with ETag/If-Match, and one error
# mapping (404 problem+json with code NOT_FOUND). Settings come from
# POLYCRUD_TEST_SETTINGS_FILE; the environment overrides each.
set -euo pipefail

readonly ADMIN=interop-admin-token
readonly READER=interop-reader-token
readonly PY=/usr/bin/python3

# shellcheck source=../support/settings.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/settings.sh"

# json FILE EXPR: evaluates a Python expression over the JSON document `d`.
json() {
  "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# header FILE NAME: the value of a response header (last response in FILE).
header() {
  tr -d '\r' <"$1" | awk -v name="$(tr '[:upper:]' '[:lower:]' <<<"$2")" -F': ' \
    'tolower($1) == name { value = $2 } END { print value }'
}

# status FILE: the HTTP status code of the last response in FILE.
status() {
  tr -d '\r' <"$1" | awk '/^HTTP\// { code = $2 } END { print code }'
}

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(PYTHONPATH="$(dirname "$0")/../support" "$PY" -c 'from polycrud_test_support import free_port; print(free_port())')
base="http://127.0.0.1:$port"

POLYCRUD_PROTOCOLS=rest \
  POLYCRUD_REST_PORT=$port \
  POLYCRUD_MYSQL_HOST=$(setting POLYCRUD_TEST_MYSQL_HOST) \
  POLYCRUD_MYSQL_PORT=$(setting POLYCRUD_TEST_MYSQL_PORT) \
  POLYCRUD_MYSQL_USER=$(setting POLYCRUD_TEST_MYSQL_USER) \
  POLYCRUD_MYSQL_PASSWORD=$(setting POLYCRUD_TEST_MYSQL_PASSWORD) \
  POLYCRUD_MYSQL_DATABASE=$(setting POLYCRUD_TEST_MYSQL_DATABASE) \
  POLYCRUD_REDIS_PORT=$(setting POLYCRUD_TEST_REDIS_PORT) \
  POLYCRUD_ADMIN_TOKEN_SHA256=$(printf '%s' "$ADMIN" | sha256sum | cut -d' ' -f1) \
  POLYCRUD_READER_TOKEN_SHA256=$(printf '%s' "$READER" | sha256sum | cut -d' ' -f1) \
  "$(setting POLYCRUD_SERVER_BINARY)" >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 300); do
  curl -fsS -o /dev/null "$base/healthz" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; fail "server exited"; }
  sleep 0.1
done
curl -fsS -o /dev/null "$base/healthz" || fail "server did not start"

# call METHOD PATH [curl args...]: response headers in $work/h, body in $work/b.
call() {
  local method=$1 path=$2
  shift 2
  curl -sS -X "$method" -D "$work/h" -o "$work/b" "$@" "$base$path"
}

name="curl_$RANDOM$RANDOM"
full_name='Ünïcödé 😀 "quoted" '"'"'; DROP TABLE users; --'
draft=$("$PY" -c 'import json, sys; print(json.dumps({"username": sys.argv[1], "email": sys.argv[1] + "@example.com", "full_name": sys.argv[2]}))' "$name" "$full_name")

# Create: 201, Location, ETag "1".
call POST /v1/users -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  --data-binary "$draft"
[[ $(status "$work/h") == 201 ]] || fail "create: $(status "$work/h") $(cat "$work/b")"
id=$(json "$work/b" 'd["id"]')
location=$(header "$work/h" Location)
[[ $location == "/v1/users/$id" ]] || fail "Location is '$location'"
[[ $(header "$work/h" ETag) == '"1"' ]] || fail "create ETag is '$(header "$work/h" ETag)'"
[[ $(json "$work/b" 'd["full_name"]') == "$full_name" ]] || fail "full_name did not round-trip"

# Get: 200 with the same ETag.
call GET "$location" -H "Authorization: Bearer $READER"
[[ $(status "$work/h") == 200 ]] || fail "get: $(status "$work/h")"
etag=$(header "$work/h" ETag)
[[ $etag == '"1"' ]] || fail "get ETag is '$etag'"
[[ $(json "$work/b" 'd["username"]') == "$name" ]] || fail "get returned another user"

# Update with If-Match: the current ETag succeeds, a stale one is a 409.
call PATCH "$location" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -H "If-Match: $etag" --data-binary '{"full_name":"Renamed"}'
[[ $(status "$work/h") == 200 ]] || fail "update: $(status "$work/h") $(cat "$work/b")"
[[ $(header "$work/h" ETag) == '"2"' ]] || fail "update ETag is '$(header "$work/h" ETag)'"
[[ $(json "$work/b" 'd["full_name"]') == Renamed ]] || fail "update did not apply"
call PATCH "$location" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -H "If-Match: $etag" --data-binary '{"full_name":"Stale"}'
[[ $(status "$work/h") == 409 ]] || fail "stale If-Match: $(status "$work/h")"

# List and batch see it.
call GET "/v1/users?after_id=$((id - 1))&limit=1" -H "Authorization: Bearer $READER"
[[ $(json "$work/b" '[u["id"] for u in d["users"]]') == "[$id]" ]] || fail "list: $(cat "$work/b")"
call POST /v1/users:batchGet -H "Authorization: Bearer $READER" \
  -H 'Content-Type: application/json' --data-binary "{\"ids\":[$id, 999999999999]}"
[[ $(json "$work/b" '[u["id"] for u in d["users"]]') == "[$id]" ]] || fail "batch: $(cat "$work/b")"

# Delete: 204, then the user is a 404 problem+json with code NOT_FOUND.
call DELETE "$location" -H "Authorization: Bearer $ADMIN"
[[ $(status "$work/h") == 204 ]] || fail "delete: $(status "$work/h")"
call GET "$location" -H "Authorization: Bearer $READER"
[[ $(status "$work/h") == 404 ]] || fail "get after delete: $(status "$work/h")"
[[ $(header "$work/h" Content-Type) == application/problem+json ]] ||
  fail "404 Content-Type is '$(header "$work/h" Content-Type)'"
[[ $(json "$work/b" 'd["code"]') == NOT_FOUND ]] || fail "404 code: $(cat "$work/b")"
[[ $(json "$work/b" 'd["status"]') == 404 ]] || fail "404 status member: $(cat "$work/b")"

echo "interop.rest_curl: OK"
