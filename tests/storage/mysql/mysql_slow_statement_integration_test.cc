// Statements that are slow without waiting for any lock end at the
// statement timeout (MariaDB's max_statement_time), on a private MariaDB
// whose users table gets a trigger that sleeps: the store answers busy with
// nothing written, promptly, and its connection goes on.
#include <cppconn/exception.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "storage/mysql/mysql_connection_pool.h"
#include "storage/mysql/mysql_user_store.h"
#include "tests/storage/mysql/mysql_test_options.h"
#include "tests/support/settings.h"
#include "tests/support/stack.h"

namespace polycrud {
namespace {

using namespace std::chrono_literals;

MysqlOptions Options(int port) {
  MysqlOptions options = testing::TestMysqlOptions(port);
  options.pool_size = 1;
  options.statement_timeout_ms = 500;
  return options;
}

TEST(MysqlStatementTimeoutTest, ASlowStatementIsAbortedAndTheSessionGoesOn) {
  testing::MariadbInstance mariadb("mariadb-slow-statement");
  StatusOr<std::unique_ptr<MysqlConnection>> connection =
      MysqlConnection::Open(Options(mariadb.port()));
  ASSERT_TRUE(connection.ok()) << connection.status().ToString();
  const auto start = std::chrono::steady_clock::now();
  try {
    (*connection)->Execute("SELECT SLEEP(5)");
    ADD_FAILURE() << "SLEEP(5) was not aborted";
  } catch (const sql::SQLException& e) {
    EXPECT_EQ(e.getErrorCode(), 1969) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ((*connection)->Execute("DO 1"), 0u);  // the same session serves on
}

// Regression: a statement slow for any reason but a lock (here a trigger)
// ran until the 5 s read timeout dropped its connection, the write's outcome
// then unknown.
TEST(MysqlStatementTimeoutTest, ASlowUpdateIsAnsweredBusyWithNothingWritten) {
  testing::MariadbInstance mariadb("mariadb-slow-update");
  MysqlUserStore store(Options(mariadb.port()));
  ASSERT_TRUE(store.Migrate().ok());
  StatusOr<User> created = store.Insert(
      UserDraft{
          .username = testing::UniqueName("slow"), .email = "s@example.com", .full_name = "S"},
      1'700'000'000'000);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  // As root: with the binary log on, only a privileged account creates triggers.
  testing::MysqlRootQuery(mariadb,
                          "CREATE TRIGGER polycrud_test.slow_update BEFORE UPDATE ON "
                          "polycrud_test.users FOR EACH ROW SET @slept = SLEEP(5)");
  const auto start = std::chrono::steady_clock::now();
  StatusOr<User> updated =
      store.Update(created->id, UserPatch{.full_name = "changed"}, 1'700'000'000'001);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(updated.ok());
  EXPECT_EQ(updated.status().code(), StatusCode::kResourceExhausted) << updated.status().ToString();
  EXPECT_LT(took, 3s);
  testing::MysqlRootQuery(mariadb, "DROP TRIGGER polycrud_test.slow_update");
  StatusOr<std::optional<User>> read = store.FindById(created->id);  // the one connection again
  ASSERT_TRUE(read.ok() && read->has_value()) << read.status().ToString();
  EXPECT_EQ((*read)->full_name, "S");
  EXPECT_EQ((*read)->version, 1);
}

}  // namespace
}  // namespace polycrud
