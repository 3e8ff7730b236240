// The schema migration lease (storage/mysql/migrations.h) on a private
// MariaDB: migrators racing on a fresh database apply each migration once, a
// live lease of another migrator makes one wait and then give up, an expired
// one is taken over, and a lease ended while one waits lets it in. The
// tests share one MariaDB and run in one process (see CMakeLists.txt).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "storage/mysql/migrations.h"
#include "tests/storage/mysql/mysql_test_options.h"
#include "tests/support/stack.h"

namespace polycrud {
namespace {

using namespace std::chrono_literals;

class MigrationLeaseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { mariadb_ = new testing::MariadbInstance("mariadb-migrations"); }
  static void TearDownTestSuite() {
    delete mariadb_;
    mariadb_ = nullptr;
  }

  // Every test starts from an empty database.
  void SetUp() override {
    Query("DROP TABLE IF EXISTS users, schema_migrations, schema_migration_lock");
  }

  static std::string Query(const std::string& sql) {
    return testing::MysqlQuery(mariadb_->port(), sql);
  }

  static MysqlOptions Options() { return testing::TestMysqlOptions(mariadb_->port()); }

  // Plants the lease of a migrator that is not this process, valid for
  // `seconds` more (negative: expired that long ago).
  static void PlantForeignLease(int seconds) {
    Query(
        "CREATE TABLE IF NOT EXISTS schema_migration_lock (id TINYINT UNSIGNED NOT NULL "
        "PRIMARY KEY, owner VARCHAR(255) NOT NULL, expires_at DATETIME(3) NOT NULL)");
    Query("INSERT INTO schema_migration_lock VALUES (1, 'elsewhere:1:feed', NOW(3) + INTERVAL " +
          std::to_string(seconds) + " SECOND)");
  }

  static void ExpectMigratedOnce() {
    EXPECT_EQ(Query("SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations"),
              std::to_string(EmbeddedMigrations().size()) + "\t" +
                  std::to_string(EmbeddedMigrations().size()) + "\n");
    EXPECT_EQ(Query("SELECT COUNT(*) FROM schema_migration_lock"), "0\n")
        << "the lease outlived its migration";
    EXPECT_EQ(Query("SELECT COUNT(*) FROM users"), "0\n");
  }

  static testing::MariadbInstance* mariadb_;
};

testing::MariadbInstance* MigrationLeaseTest::mariadb_ = nullptr;

TEST_F(MigrationLeaseTest, MigratorsStartingTogetherApplyEachMigrationOnce) {
  std::vector<Status> results(6, Status::Internal("not run"));
  std::vector<std::thread> migrators;
  for (Status& result : results) {
    migrators.emplace_back(
        [&result] { result = ApplyMigrations(Options(), MigrationLockOptions{.poll_ms = 20}); });
  }
  for (std::thread& migrator : migrators) migrator.join();
  for (const Status& result : results) EXPECT_TRUE(result.ok()) << result.ToString();
  ExpectMigratedOnce();
}

TEST_F(MigrationLeaseTest, ALiveLeaseOfAnotherMigratorMakesMigrateWaitThenGiveUp) {
  PlantForeignLease(3600);
  const auto start = std::chrono::steady_clock::now();
  const Status status = ApplyMigrations(Options(), MigrationLockOptions{.wait_ms = 600});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_GE(took, 600ms);
  EXPECT_LT(took, 10s);
  EXPECT_EQ(Query("SELECT owner FROM schema_migration_lock"), "elsewhere:1:feed\n")
      << "the waiting migrator took a live lease";
  EXPECT_EQ(Query("SHOW TABLES LIKE 'schema_migrations'"), "") << "it migrated without the lease";
}

TEST_F(MigrationLeaseTest, AnExpiredLeaseIsTakenOver) {
  PlantForeignLease(-1);
  const Status status = ApplyMigrations(Options(), MigrationLockOptions{.wait_ms = 5000});
  ASSERT_TRUE(status.ok()) << status.ToString();
  ExpectMigratedOnce();
}

TEST_F(MigrationLeaseTest, ALeaseEndedWhileWaitingLetsTheWaiterIn) {
  PlantForeignLease(3600);
  std::thread other([] {
    std::this_thread::sleep_for(500ms);
    Query("DELETE FROM schema_migration_lock WHERE owner = 'elsewhere:1:feed'");
  });
  const Status status =
      ApplyMigrations(Options(), MigrationLockOptions{.wait_ms = 20'000, .poll_ms = 50});
  other.join();
  ASSERT_TRUE(status.ok()) << status.ToString();
  ExpectMigratedOnce();
}

}  // namespace
}  // namespace polycrud
