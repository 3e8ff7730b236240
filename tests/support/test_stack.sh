#!/usr/bin/env bash
# Starts / stops the MariaDB, Redis and RabbitMQ shared by the integration and
# interop tests (CTest fixture "test_stack"). Own ports and data under the
# build tree, so a stack brought up by `./polycrud up` is never touched.
#   test_stack.sh start DIR     fresh database polycrud_test, user polycrud;
#                               Redis users polycrud and admin; RabbitMQ user
#                               polycrud on an empty vhost polycrud_test
#   test_stack.sh stop DIR
# The passwords are the test settings of tests/CMakeLists.txt (overridable
# by the same environment variables).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
stack="$here/../../deploy/local/stack.sh"
cmd=${1:?usage: test_stack.sh start|stop DIR}
dir=${2:?usage: test_stack.sh start|stop DIR}
mysql_port=${POLYCRUD_TEST_MYSQL_PORT:-23306}
redis_port=${POLYCRUD_TEST_REDIS_PORT:-26379}
amqp_port=${POLYCRUD_TEST_AMQP_PORT:-26672}
amqp_vhost=${POLYCRUD_TEST_AMQP_VHOST:-polycrud_test}
mysql_password=${POLYCRUD_TEST_MYSQL_PASSWORD:-polycrud-test}
export POLYCRUD_REDIS_PASSWORD=${POLYCRUD_TEST_REDIS_PASSWORD:-polycrud-test-redis}
export POLYCRUD_REDIS_ADMIN_PASSWORD=${POLYCRUD_TEST_REDIS_ADMIN_PASSWORD:-polycrud-test-redis-admin}
export POLYCRUD_AMQP_PASSWORD=${POLYCRUD_TEST_AMQP_PASSWORD:-polycrud-test-amqp}
export POLYCRUD_AMQP_VHOST=$amqp_vhost

case "$cmd" in
  start)
    mkdir -p "$dir"
    "$stack" redis start "$dir/redis" "$redis_port"
    "$stack" mariadb start "$dir/mariadb" "$mysql_port"
    "$stack" rabbitmq start "$dir/rabbitmq" "$amqp_port"
    # Every run starts from an empty schema, so migrations run from scratch.
    mariadb --defaults-file="$dir/mariadb/my.cnf" \
      -e 'DROP DATABASE IF EXISTS polycrud_test'
    printf '%s\n' "$mysql_password" |
      "$stack" mariadb bootstrap "$dir/mariadb" polycrud_test polycrud
    REDISCLI_AUTH=$POLYCRUD_REDIS_ADMIN_PASSWORD redis-cli --no-auth-warning --user admin \
      -p "$redis_port" FLUSHALL >/dev/null
    # Likewise an empty vhost: no exchange, queue or message of an earlier
    # run (deleting a vhost deletes all of them, and the user's permissions).
    ctl() { "$stack" rabbitmq ctl "$dir/rabbitmq" --quiet "$@" </dev/null >/dev/null; }
    ctl delete_vhost "$amqp_vhost"
    ctl add_vhost "$amqp_vhost"
    ctl set_permissions -p "$amqp_vhost" polycrud '.*' '.*' '.*'
    ;;
  stop)
    "$stack" redis stop "$dir/redis"
    "$stack" mariadb stop "$dir/mariadb"
    "$stack" rabbitmq stop "$dir/rabbitmq"
    ;;
  *)
    echo "usage: test_stack.sh start|stop DIR" >&2
    exit 2
    ;;
esac
