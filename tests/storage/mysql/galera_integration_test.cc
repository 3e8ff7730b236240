// The MySQL driver on a real three-node MariaDB Galera cluster (private
// nodes on 127.0.0.1, tests/support/stack.h): sessions read causally, a
// write through one node is read at once through another, migrators on
// every node at once apply each migration once (no GET_LOCK, which Galera
// does not replicate), a node cut off from the cluster answers UNAVAILABLE
// and serves again once it is back, and a killed node rejoins with what it
// missed. The tests share one cluster and run in one process (see
// CMakeLists.txt).
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "core/user.h"
#include "storage/mysql/migrations.h"
#include "storage/mysql/mysql_connection_pool.h"
#include "storage/mysql/mysql_user_store.h"
#include "tests/storage/mysql/mysql_test_options.h"
#include "tests/support/settings.h"
#include "tests/support/stack.h"

namespace polycrud {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kNowMs = 1'700'000'000'000;

class GaleraTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new testing::GaleraCluster("galera"); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  static MysqlOptions Node(int i) {
    MysqlOptions options = testing::TestMysqlOptions(cluster_->node(i).port());
    options.pool_size = 2;
    options.connect_timeout_ms = 1000;
    options.acquire_timeout_ms = 1000;
    return options;
  }

  static UserDraft Draft(const std::string& tag) {
    const std::string name = testing::UniqueName(tag);
    return UserDraft{.username = name, .email = name + "@example.com", .full_name = "Galera"};
  }

  // Waits up to `timeout` until `done` is true; whether it became so.
  template <typename Predicate>
  static bool Within(std::chrono::milliseconds timeout, Predicate done) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return done();
  }

  static testing::GaleraCluster* cluster_;
};

testing::GaleraCluster* GaleraTest::cluster_ = nullptr;

TEST_F(GaleraTest, MigratorsOnEveryNodeAtOnceApplyEachMigrationOnce) {
  std::vector<Status> results(6, Status::Internal("not run"));
  std::vector<std::thread> migrators;
  for (int i = 0; i < static_cast<int>(results.size()); ++i) {
    migrators.emplace_back([&results, i] {
      results[i] = ApplyMigrations(Node(i % 3), MigrationLockOptions{.poll_ms = 20});
    });
  }
  for (std::thread& migrator : migrators) migrator.join();
  for (const Status& result : results) EXPECT_TRUE(result.ok()) << result.ToString();
  const std::string count = std::to_string(EmbeddedMigrations().size());
  for (int i = 0; i < cluster_->size(); ++i) {
    EXPECT_EQ(testing::MysqlQuery(cluster_->node(i).port(),
                                  "SELECT COUNT(*), COUNT(DISTINCT version) FROM "
                                  "schema_migrations; SELECT COUNT(*) FROM schema_migration_lock"),
              count + "\t" + count + "\n0\n")
        << "node " << i + 1;
  }
}

TEST_F(GaleraTest, EverySessionOnANodeReadsCausally) {
  StatusOr<std::unique_ptr<MysqlConnection>> causal = MysqlConnection::Open(Node(1));
  ASSERT_TRUE(causal.ok()) << causal.status().ToString();
  EXPECT_TRUE((*causal)->galera());
  MysqlOptions plain_options = Node(1);
  plain_options.causal_reads = false;
  StatusOr<std::unique_ptr<MysqlConnection>> plain = MysqlConnection::Open(plain_options);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  // Reads the session variable through the driver, as the store would.
  auto sync_wait = [](MysqlConnection& connection) {
    sql::PreparedStatement& select = connection.Prepare("SELECT @@session.wsrep_sync_wait");
    std::unique_ptr<sql::ResultSet> row(select.executeQuery());
    return row->next() ? row->getInt(1) : -1;
  };
  EXPECT_EQ(sync_wait(**causal), 3);
  EXPECT_EQ(sync_wait(**plain), 0);
}

TEST_F(GaleraTest, AWriteThroughOneNodeIsReadThroughAnotherAtOnce) {
  ASSERT_TRUE(ApplyMigrations(Node(0)).ok());
  MysqlUserStore writer(Node(0));
  MysqlUserStore reader(Node(2));
  int stale = 0;
  for (int i = 0; i < 200; ++i) {
    StatusOr<User> created = writer.Insert(Draft("causal"), kNowMs + i);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    StatusOr<std::optional<User>> read = reader.FindById(created->id);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    if (!read->has_value()) ++stale;
    StatusOr<User> updated =
        writer.Update(created->id, UserPatch{.full_name = "changed"}, kNowMs + i);
    ASSERT_TRUE(updated.ok()) << updated.status().ToString();
    read = reader.FindById(created->id);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    if (!read->has_value() || (*read)->version != updated->version) ++stale;
  }
  EXPECT_EQ(stale, 0) << "reads through another node missed a committed write";
}

TEST_F(GaleraTest, TheSeederLoadsThroughOneNodeAndEveryNodeHasTheRows) {
  testing::MysqlQuery(cluster_->node(0).port(), "DROP TABLE IF EXISTS users");
  testing::MysqlQuery(cluster_->node(0).port(), "DELETE FROM schema_migrations");
  setenv("POLYCRUD_MYSQL_PASSWORD", testing::Setting("POLYCRUD_TEST_MYSQL_PASSWORD").c_str(), 1);
  const std::string seed = testing::Setting("POLYCRUD_SEED_BINARY") + " --port " +
                           std::to_string(cluster_->node(0).port()) + " --user " +
                           testing::Setting("POLYCRUD_TEST_MYSQL_USER") + " --database " +
                           testing::Setting("POLYCRUD_TEST_MYSQL_DATABASE") +
                           " --users 30000 --batch 10000 >/dev/null";
  ASSERT_EQ(testing::Shell(seed), 0) << seed;
  for (int i = 0; i < cluster_->size(); ++i) {
    EXPECT_EQ(testing::MysqlQuery(cluster_->node(i).port(),
                                  "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*), "
                                  "COUNT(DISTINCT username) FROM users"),
              "30000\t30000\n")
        << "node " << i + 1;
  }
  // Seeding again adds nothing: the table already holds as many users.
  ASSERT_EQ(testing::Shell(seed), 0) << seed;
  EXPECT_EQ(testing::MysqlQuery(cluster_->node(2).port(),
                                "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM users"),
            "30000\n");
}

TEST_F(GaleraTest, ANodeCutOffFromTheClusterAnswersUnavailableAndServesOnceBack) {
  ASSERT_TRUE(ApplyMigrations(Node(0)).ok());
  MysqlUserStore writer(Node(0));
  MysqlUserStore cut_off(Node(2));
  StatusOr<User> created = writer.Insert(Draft("isolated"), kNowMs);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_TRUE(cut_off.FindById(created->id).ok());

  // The node leaves the group: alone, it is no longer the primary component.
  testing::MysqlRootQuery(cluster_->node(2),
                          "SET GLOBAL wsrep_provider_options='gmcast.isolate=1'");
  Status last;
  EXPECT_TRUE(Within(20s,
                     [&] {
                       last = cut_off.FindById(created->id).status();
                       return last.code() == StatusCode::kUnavailable;
                     }))
      << "the cut-off node still answered: " << last.ToString();
  // The two others still form the primary component and take writes.
  StatusOr<User> during = writer.Insert(Draft("isolated"), kNowMs);
  ASSERT_TRUE(during.ok()) << during.status().ToString();

  testing::MysqlRootQuery(cluster_->node(2),
                          "SET GLOBAL wsrep_provider_options='gmcast.isolate=0'");
  StatusOr<std::optional<User>> after = Status::Internal("not read");
  EXPECT_TRUE(Within(30s,
                     [&] {
                       after = cut_off.FindById(during->id);
                       return after.ok() && after->has_value();
                     }))
      << "the node did not serve the write it missed: "
      << (after.ok() ? "not found" : after.status().ToString());
}

TEST_F(GaleraTest, AKilledNodeRejoinsWithTheWritesItMissed) {
  ASSERT_TRUE(ApplyMigrations(Node(0)).ok());
  MysqlUserStore writer(Node(0));
  cluster_->node(1).Signal(SIGKILL);
  EXPECT_EQ(MysqlUserStore(Node(1)).Ping().code(), StatusCode::kUnavailable);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 50; ++i) {
    StatusOr<User> created = writer.Insert(Draft("rejoin"), kNowMs);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    ids.push_back(created->id);
  }
  cluster_->node(1).Start();  // returns once the node is synced again
  MysqlUserStore rejoined(Node(1));
  for (const std::int64_t id : ids) {
    StatusOr<std::optional<User>> read = rejoined.FindById(id);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_TRUE(read->has_value()) << "user " << id << " missing on the rejoined node";
  }
  EXPECT_EQ(testing::MysqlQuery(cluster_->node(0).port(), "SHOW STATUS LIKE 'wsrep_cluster_size'"),
            "wsrep_cluster_size\t3\n");
}

}  // namespace
}  // namespace polycrud
