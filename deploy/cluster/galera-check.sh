#!/usr/bin/env bash
# HAProxy's health check of one MariaDB Galera node (external-check): exit 0
# only when the node serves, i.e. it is in the primary component and synced
# (wsrep_ready ON, wsrep_local_state 4). HAProxy runs it as
#   galera-check.sh PROXY_ADDR PROXY_PORT SERVER_ADDR SERVER_PORT
# The check account has no privileges; its password is in the file named by
# POLYCRUD_GALERA_CHECK_PASSWORD_FILE (set in haproxy.cfg's setenv).
set -u

addr=${3:-}
port=${4:-}
[[ -n $addr && -n $port ]] || exit 2
password_file=${POLYCRUD_GALERA_CHECK_PASSWORD_FILE:-}
[[ -r $password_file ]] || exit 2
IFS= read -r MYSQL_PWD <"$password_file" || exit 2
export MYSQL_PWD

state=$(timeout 2 mariadb --no-defaults --protocol=tcp -h "$addr" -P "$port" -u haproxy_check \
  --connect-timeout=1 --batch --skip-column-names -e \
  "SELECT GROUP_CONCAT(VARIABLE_VALUE ORDER BY VARIABLE_NAME SEPARATOR ' ')
     FROM information_schema.GLOBAL_STATUS
    WHERE VARIABLE_NAME IN ('WSREP_LOCAL_STATE', 'WSREP_READY')" 2>/dev/null) || exit 1
# Sorted by name: WSREP_LOCAL_STATE, then WSREP_READY.
[[ $state == "4 ON" ]]
