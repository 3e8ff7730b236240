#!/usr/bin/env bash
# Starts / stops the MariaDB and Redis shared by the integration and interop
# tests (CTest fixture "test_stack"). Own ports and data under the build tree,
# so a stack brought up by `./polycrud up` is never touched.
#   test_stack.sh start DIR     fresh database polycrud_test, user polycrud
#   test_stack.sh stop DIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
stack="$here/../../deploy/local/stack.sh"
cmd=${1:?usage: test_stack.sh start|stop DIR}
dir=${2:?usage: test_stack.sh start|stop DIR}
mysql_port=${POLYCRUD_TEST_MYSQL_PORT:-23306}
redis_port=${POLYCRUD_TEST_REDIS_PORT:-26379}

case "$cmd" in
  start)
    mkdir -p "$dir"
    "$stack" redis start "$dir/redis" "$redis_port"
    "$stack" mariadb start "$dir/mariadb" "$mysql_port"
    # Every run starts from an empty schema, so migrations run from scratch.
    mariadb --defaults-file="$dir/mariadb/my.cnf" -uroot \
      -e 'DROP DATABASE IF EXISTS polycrud_test'
    "$stack" mariadb bootstrap "$dir/mariadb" polycrud_test polycrud polycrud-test
    redis-cli -p "$redis_port" FLUSHALL >/dev/null
    ;;
  stop)
    "$stack" redis stop "$dir/redis"
    "$stack" mariadb stop "$dir/mariadb"
    ;;
  *)
    echo "usage: test_stack.sh start|stop DIR" >&2
    exit 2
    ;;
esac
