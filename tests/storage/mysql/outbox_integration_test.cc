// The transactional outbox on a private MariaDB (storage/mysql/
// mysql_outbox.h, docs/events.md): every write leaves exactly one event, in
// the transaction of its change; a write that fails leaves none; the body
// is the row as committed; the relay lease is held by one outbox at a time;
// unsent events come in seq order, are marked sent and pruned. The tests
// share one MariaDB and run in one process (see CMakeLists.txt).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "core/user.h"
#include "storage/mysql/mysql_outbox.h"
#include "storage/mysql/mysql_user_store.h"
#include "tests/storage/mysql/mysql_test_options.h"
#include "tests/support/stack.h"

namespace polycrud {
namespace {

constexpr std::int64_t kNowMs = 1'700'000'000'000;

class OutboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    mariadb_ = new testing::MariadbInstance("mariadb-outbox");
    MysqlUserStore store(Options());
    ASSERT_TRUE(store.Migrate().ok());
  }
  static void TearDownTestSuite() {
    delete mariadb_;
    mariadb_ = nullptr;
  }
  void SetUp() override { Query("DELETE FROM user_events; DELETE FROM event_relay_lease"); }

  static MysqlOptions Options(bool write_events = true) {
    MysqlOptions options = testing::TestMysqlOptions(mariadb_->port());
    options.write_events = write_events;
    return options;
  }
  static std::string Query(const std::string& sql) {
    return testing::MysqlQuery(mariadb_->port(), sql);
  }
  static std::string RootQuery(const std::string& sql) {
    return testing::MysqlRootQuery(*mariadb_, sql);
  }
  static std::int64_t EventCount() { return std::stoll(Query("SELECT COUNT(*) FROM user_events")); }
  static UserDraft Draft(const std::string& name) {
    return UserDraft{.username = name, .email = name + "@example.com", .full_name = "Name " + name};
  }

  static testing::MariadbInstance* mariadb_;
};

testing::MariadbInstance* OutboxTest::mariadb_ = nullptr;

TEST_F(OutboxTest, EveryWriteLeavesExactlyOneEventWithTheRowAsCommitted) {
  MysqlUserStore store(Options());
  StatusOr<User> created = store.Insert(Draft("ev_one"), kNowMs);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  StatusOr<User> updated =
      store.Update(created->id, UserPatch{.full_name = "Zoë \"quoted\" 'x'"}, kNowMs + 1);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  StatusOr<std::int64_t> deleted = store.Delete(created->id);
  ASSERT_TRUE(deleted.ok());

  MysqlOutbox outbox(Options(), 10'000);
  StatusOr<std::vector<OutboxEvent>> events = outbox.Unsent(100);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 3u);
  const std::vector<std::string> types = {"user.created", "user.updated", "user.deleted"};
  std::set<std::string> ids;
  for (std::size_t i = 0; i < events->size(); ++i) {
    const OutboxEvent& event = (*events)[i];
    EXPECT_EQ(event.type, types[i]);
    EXPECT_EQ(event.user_id, created->id);
    EXPECT_EQ(event.version, static_cast<std::int64_t>(i) + 1);  // a delete: the last version + 1
    if (i > 0) {
      EXPECT_GT(event.seq, (*events)[i - 1].seq);
    }
    EXPECT_EQ(event.event_id.size(), 36u);
    ids.insert(event.event_id);
    const nlohmann::json body = nlohmann::json::parse(event.body);
    EXPECT_EQ(body["event_id"], event.event_id);
    EXPECT_EQ(body["type"], event.type);
    EXPECT_EQ(body["id"], created->id);
    EXPECT_EQ(body["version"], event.version);
    EXPECT_EQ(body["occurred_at_ms"], event.occurred_at_ms);
    EXPECT_GT(event.occurred_at_ms, 0);
    if (event.type == "user.deleted") {
      EXPECT_FALSE(body.contains("user"));
      continue;
    }
    const User& user = i == 0 ? *created : *updated;
    const nlohmann::json& json_user = body["user"];
    EXPECT_EQ(json_user["id"], user.id);
    EXPECT_EQ(json_user["username"], user.username);
    EXPECT_EQ(json_user["email"], user.email);
    EXPECT_EQ(json_user["full_name"], user.full_name);
    EXPECT_EQ(json_user["version"], user.version);
    EXPECT_EQ(json_user["created_at_ms"], user.created_at_ms);
    EXPECT_EQ(json_user["updated_at_ms"], user.updated_at_ms);
  }
  EXPECT_EQ(ids.size(), 3u);
}

TEST_F(OutboxTest, AWriteThatFailsLeavesNoEvent) {
  MysqlUserStore store(Options());
  StatusOr<User> created = store.Insert(Draft("ev_fail"), kNowMs);
  ASSERT_TRUE(created.ok());
  ASSERT_EQ(EventCount(), 1);
  EXPECT_EQ(store.Insert(Draft("ev_fail"), kNowMs).status().code(), StatusCode::kConflict);
  EXPECT_EQ(store.Update(created->id, UserPatch{.full_name = "x", .expected_version = 9}, kNowMs)
                .status()
                .code(),
            StatusCode::kConflict);
  EXPECT_EQ(store.Update(created->id + 1000, UserPatch{.full_name = "x"}, kNowMs).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store.Delete(created->id + 1000).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(EventCount(), 1);
}

TEST_F(OutboxTest, TheEventIsWrittenInTheTransactionOfItsChange) {
  MysqlUserStore store(Options());
  StatusOr<User> created = store.Insert(Draft("ev_tx"), kNowMs);
  ASSERT_TRUE(created.ok());
  // An event that cannot be written takes its change down with it.
  RootQuery(
      "CREATE TRIGGER polycrud_test.refuse_events BEFORE INSERT ON polycrud_test.user_events "
      "FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no events'");
  const StatusOr<User> not_created = store.Insert(Draft("ev_tx_2"), kNowMs);
  const StatusOr<User> not_updated = store.Update(created->id, UserPatch{.full_name = "x"}, kNowMs);
  const StatusOr<std::int64_t> not_deleted = store.Delete(created->id);
  RootQuery("DROP TRIGGER polycrud_test.refuse_events");
  EXPECT_FALSE(not_created.ok());
  EXPECT_FALSE(not_updated.ok());
  EXPECT_FALSE(not_deleted.ok());
  EXPECT_EQ(Query("SELECT COUNT(*) FROM users WHERE username = 'ev_tx_2'"), "0\n");
  EXPECT_EQ(Query("SELECT version, full_name FROM users WHERE id = " + std::to_string(created->id)),
            "1\tName ev_tx\n");
  EXPECT_EQ(EventCount(), 1);
}

// A COMMIT that cannot finish within the statement timeout (held here by a
// root session in BACKUP STAGE BLOCK_COMMIT, which lets the statements of
// the transaction run and stops only its COMMIT): each of create, update
// and delete answers UNAVAILABLE, the outcome unknown (never "busy", which
// would tell the client nothing was written), promptly; once commits go
// on, the change and its event are both there or both absent.
TEST_F(OutboxTest, ACommitThatCannotFinishIsAnsweredUnknownAndKeepsChangeAndEventTogether) {
  MysqlOptions options = Options();
  options.pool_size = 1;
  options.statement_timeout_ms = 500;
  MysqlUserStore store(options);
  StatusOr<User> created = store.Insert(Draft("ev_commit"), kNowMs);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string id = std::to_string(created->id);

  // Runs `write` while commits are blocked for 2 s; its status.
  const auto with_commits_blocked = [](const auto& write) {
    std::thread blocker([] {
      RootQuery("BACKUP STAGE START; BACKUP STAGE BLOCK_COMMIT; DO SLEEP(2); BACKUP STAGE END");
    });
    const auto blocked = [] {
      return RootQuery(
                 "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = "
                 "'DO SLEEP(2)'") == "1\n";
    };
    for (int i = 0; i < 100 && !blocked(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(blocked()) << "the blocking session never held BLOCK_COMMIT";
    const auto start = std::chrono::steady_clock::now();
    const Status status = write();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1'500));
    blocker.join();
    return status;
  };
  const auto events_of = [&id](const std::string& type) {
    return Query("SELECT COUNT(*) FROM user_events WHERE user_id = " + id + " AND type = '" + type +
                 "'");
  };

  const Status update = with_commits_blocked([&] {
    return store.Update(created->id, UserPatch{.full_name = "blocked"}, kNowMs).status();
  });
  EXPECT_EQ(update.code(), StatusCode::kUnavailable) << update.ToString();
  const std::string version = Query("SELECT version FROM users WHERE id = " + id);
  EXPECT_EQ(events_of("user.updated"), version == "2\n" ? "1\n" : "0\n") << version;

  const Status insert =
      with_commits_blocked([&] { return store.Insert(Draft("ev_commit_2"), kNowMs).status(); });
  EXPECT_EQ(insert.code(), StatusCode::kUnavailable) << insert.ToString();
  EXPECT_EQ(Query("SELECT COUNT(*) FROM users WHERE username = 'ev_commit_2'"),
            Query("SELECT COUNT(*) FROM user_events WHERE type = 'user.created' AND "
                  "JSON_VALUE(body, '$.user.username') = 'ev_commit_2'"));

  const Status remove = with_commits_blocked([&] { return store.Delete(created->id).status(); });
  EXPECT_EQ(remove.code(), StatusCode::kUnavailable) << remove.ToString();
  EXPECT_EQ(events_of("user.deleted"), Query("SELECT 1 - COUNT(*) FROM users WHERE id = " + id));

  // The store's one connection was dropped each time; a new one serves.
  StatusOr<std::optional<User>> read = store.FindById(created->id);
  EXPECT_TRUE(read.ok()) << read.status().ToString();
}

TEST_F(OutboxTest, AStoreNotToldToWriteEventsWritesNone) {
  MysqlUserStore store(Options(/*write_events=*/false));
  StatusOr<User> created = store.Insert(Draft("ev_none"), kNowMs);
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(store.Update(created->id, UserPatch{.full_name = "y"}, kNowMs).ok());
  ASSERT_TRUE(store.Delete(created->id).ok());
  EXPECT_EQ(EventCount(), 0);
}

TEST_F(OutboxTest, TheRelayLeaseIsHeldByOneOutboxAtATimeAndTakenOverOnceExpired) {
  MysqlOutbox a(Options(), 1'000);
  MysqlOutbox b(Options(), 1'000);
  ASSERT_TRUE(*a.HoldLease());
  EXPECT_FALSE(*b.HoldLease());
  EXPECT_TRUE(*a.HoldLease());  // renewed
  EXPECT_FALSE(*b.HoldLease());
  std::this_thread::sleep_for(std::chrono::milliseconds(1'200));  // a stopped renewing
  EXPECT_TRUE(*b.HoldLease());
  EXPECT_FALSE(*a.HoldLease());  // a's renewal fails: b holds it
  ASSERT_TRUE(b.ReleaseLease().ok());
  EXPECT_TRUE(*a.HoldLease());  // given up: no wait for the expiry
}

TEST_F(OutboxTest, UnsentEventsComeInSeqOrderAreMarkedSentAndPrunedAfterRetention) {
  MysqlUserStore store(Options());
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    StatusOr<User> created = store.Insert(Draft("ev_order_" + std::to_string(i)), kNowMs);
    ASSERT_TRUE(created.ok());
    ids.push_back(created->id);
  }
  MysqlOutbox outbox(Options(), 10'000);
  StatusOr<std::vector<OutboxEvent>> first = outbox.Unsent(3);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 3u);
  std::vector<std::int64_t> seqs;
  for (std::size_t i = 0; i < first->size(); ++i) {
    EXPECT_EQ((*first)[i].user_id, ids[i]);
    seqs.push_back((*first)[i].seq);
  }
  StatusOr<MysqlOutbox::Backlog> backlog = outbox.Pending();
  ASSERT_TRUE(backlog.ok());
  EXPECT_EQ(backlog->events, 5);
  ASSERT_TRUE(outbox.MarkSent(seqs, 1'000).ok());
  StatusOr<std::vector<OutboxEvent>> rest = outbox.Unsent(10);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[0].user_id, ids[3]);
  EXPECT_EQ(outbox.Pending()->events, 2);
  // Sent at 1000: pruned by a cut at 1001, not at 1000; unsent ones never.
  EXPECT_EQ(*outbox.Prune(1'000, 100), 0);
  EXPECT_EQ(*outbox.Prune(1'001, 2), 2);  // bounded by the limit
  EXPECT_EQ(*outbox.Prune(1'001, 100), 1);
  EXPECT_EQ(EventCount(), 2);
}

}  // namespace
}  // namespace polycrud
