// MysqlOptions for a test's MariaDB on 127.0.0.1:port (the test stack's or a
// private one), with the test user and database of tests/support/settings.h.
#pragma once

#include <string>

#include "storage/mysql/mysql_connection_pool.h"
#include "tests/support/settings.h"

namespace polycrud::testing {

inline MysqlOptions TestMysqlOptions(int port) {
  MysqlOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  options.user = Setting("POLYCRUD_TEST_MYSQL_USER");
  options.password = Setting("POLYCRUD_TEST_MYSQL_PASSWORD");
  options.database = Setting("POLYCRUD_TEST_MYSQL_DATABASE");
  return options;
}

}  // namespace polycrud::testing
