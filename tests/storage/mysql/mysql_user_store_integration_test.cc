// MysqlUserStore and MysqlConnectionPool against a real MariaDB, reached
// through the test stack's settings (POLYCRUD_TEST_MYSQL_*, see
// tests/support/settings.h). Every test uses usernames unique to this run, so
// reruns against the same database do not collide.
#include <arpa/inet.h>
#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/ports.h"
#include "core/status.h"
#include "core/user.h"
#include "storage/mysql/mysql_connection_pool.h"
#include "storage/mysql/mysql_user_store.h"
#include "tests/support/settings.h"

namespace polycrud {
namespace {

constexpr std::int64_t kNowMs = 1'700'000'000'000;

// The MariaDB of the test stack (tests/support/settings.h).
std::optional<MysqlOptions> OptionsFromEnvironment() {
  using testing::Setting;
  MysqlOptions options;
  options.host = Setting("POLYCRUD_TEST_MYSQL_HOST");
  options.port = std::stoi(Setting("POLYCRUD_TEST_MYSQL_PORT"));
  options.user = Setting("POLYCRUD_TEST_MYSQL_USER");
  options.password = Setting("POLYCRUD_TEST_MYSQL_PASSWORD");
  options.database = Setting("POLYCRUD_TEST_MYSQL_DATABASE");
  options.pool_size = 16;
  return options;
}

// A suffix unique to this process run: [a-z0-9], 10 characters.
const std::string& RunSuffix() {
  static const std::string suffix = [] {
    std::random_device device;
    std::mt19937_64 random(
        (static_cast<std::uint64_t>(device()) << 32) ^ device() ^
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
    constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string s;
    for (int i = 0; i < 10; ++i) s += kAlphabet[random() % (sizeof(kAlphabet) - 1)];
    return s;
  }();
  return suffix;
}

// A port on 127.0.0.1 nobody listens on (bound, then released).
int UnusedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

class MysqlUserStoreIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<MysqlOptions> options = OptionsFromEnvironment();
    ASSERT_TRUE(options.has_value());
    options_ = *options;
    store_ = std::make_unique<MysqlUserStore>(options_);
    const Status migrated = store_->Migrate();
    ASSERT_TRUE(migrated.ok()) << migrated.ToString();
  }

  // A username unique to this run and call: "<tag>_<run suffix><n>".
  std::string Username(const std::string& tag) {
    static std::atomic<int> counter{0};
    return tag + "_" + RunSuffix() + std::to_string(counter++);
  }

  UserDraft Draft(const std::string& tag, std::string full_name = "Test User") {
    UserDraft draft;
    draft.username = Username(tag);
    draft.email = draft.username + "@example.com";
    draft.full_name = std::move(full_name);
    return draft;
  }

  User MustInsert(const UserDraft& draft) {
    StatusOr<User> user = store_->Insert(draft, kNowMs);
    EXPECT_TRUE(user.ok()) << user.status().ToString();
    return user.ok() ? *user : User{};
  }

  MysqlOptions options_;
  std::unique_ptr<MysqlUserStore> store_;
};

TEST_F(MysqlUserStoreIntegrationTest, MigrateIsIdempotent) {
  const Status again = store_->Migrate();
  ASSERT_TRUE(again.ok()) << again.ToString();

  StatusOr<std::unique_ptr<MysqlConnection>> connection = MysqlConnection::Open(options_);
  ASSERT_TRUE(connection.ok()) << connection.status().ToString();
  sql::PreparedStatement& select =
      (*connection)
          ->Prepare(
              "SELECT COUNT(*), COUNT(DISTINCT version), MIN(version) FROM schema_migrations");
  std::unique_ptr<sql::ResultSet> row(select.executeQuery());
  ASSERT_TRUE(row->next());
  EXPECT_GE(row->getInt64(1), 1);
  EXPECT_EQ(row->getInt64(1), row->getInt64(2)) << "a migration was recorded twice";
  EXPECT_EQ(row->getInt64(3), 1);
}

TEST_F(MysqlUserStoreIntegrationTest, InsertAndFindRoundTripTrickyFullNamesByteExact) {
  std::string longest;
  for (int i = 0; i < 128; ++i) longest += (i % 2 == 0) ? "😀" : "é";
  const std::vector<std::string> names = {
      "Zoë Ünïcødé 😀🚀",
      "José Ñúñez-García",
      "O'Brien \"the quote\" `tick`",
      "'; DROP TABLE users; --",
      "Robert'); DELETE FROM users WHERE ('1'='1",
      "back\\slash and 100% _wild_",
      "李小龍 山田太郎 Дмитрий Παύλος",
      "e\xCC\x81 (combining accent, not precomposed)",
      longest,
  };
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const User inserted = MustInsert(Draft("rt", name));
    EXPECT_GT(inserted.id, 0);
    EXPECT_EQ(inserted.version, 1);
    EXPECT_EQ(inserted.created_at_ms, kNowMs);
    EXPECT_EQ(inserted.updated_at_ms, kNowMs);

    StatusOr<std::optional<User>> found = store_->FindById(inserted.id);
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ(**found, inserted);
    EXPECT_EQ((*found)->full_name, name);
  }
}

TEST_F(MysqlUserStoreIntegrationTest, InsertOfOverlongFullNameFailsInsteadOfTruncating) {
  const std::string too_long(129, 'x');
  StatusOr<User> user = store_->Insert(Draft("long", too_long), kNowMs);
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(user.status().code(), StatusCode::kInternal);
}

TEST_F(MysqlUserStoreIntegrationTest, DuplicateUsernameIsConflict) {
  const UserDraft first = Draft("dupu");
  MustInsert(first);
  UserDraft second = first;
  second.email = "other." + first.email;

  StatusOr<User> duplicate = store_->Insert(second, kNowMs);
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.status().code(), StatusCode::kConflict);
  EXPECT_EQ(duplicate.status().conflict_kind(), ConflictKind::kDuplicate);
  EXPECT_EQ(duplicate.status().message(), "username already exists");
}

TEST_F(MysqlUserStoreIntegrationTest, DuplicateEmailDifferingOnlyInCaseIsConflict) {
  const UserDraft first = Draft("dupe");
  MustInsert(first);
  UserDraft second = Draft("dupe");
  second.email = first.email;
  std::transform(second.email.begin(), second.email.end(), second.email.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });

  StatusOr<User> duplicate = store_->Insert(second, kNowMs);
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.status().code(), StatusCode::kConflict);
  EXPECT_EQ(duplicate.status().conflict_kind(), ConflictKind::kDuplicate);
  EXPECT_EQ(duplicate.status().message(), "email already exists");
}

TEST_F(MysqlUserStoreIntegrationTest, EmailsDifferingOnlyInAccentsAreDistinct) {
  UserDraft plain = Draft("acc");
  plain.email = plain.username + ".jose@example.com";
  UserDraft accented = Draft("acc");
  accented.email = plain.username + ".jos\xC3\xA9@example.com";
  MustInsert(plain);
  const User second = MustInsert(accented);
  EXPECT_EQ(second.email, accented.email);
}

TEST_F(MysqlUserStoreIntegrationTest, UpdateWithMatchingExpectedVersionBumpsVersion) {
  const User user = MustInsert(Draft("upd"));
  UserPatch patch;
  patch.full_name = "Renamed 😀";
  patch.expected_version = 1;

  StatusOr<User> updated = store_->Update(user.id, patch, kNowMs + 5);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version, 2);
  EXPECT_EQ(updated->full_name, "Renamed 😀");
  EXPECT_EQ(updated->email, user.email);  // unset field unchanged
  EXPECT_EQ(updated->created_at_ms, kNowMs);
  EXPECT_EQ(updated->updated_at_ms, kNowMs + 5);

  StatusOr<std::optional<User>> found = store_->FindById(user.id);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(**found, *updated);
}

TEST_F(MysqlUserStoreIntegrationTest, UpdateWithStaleExpectedVersionIsVersionMismatch) {
  const User user = MustInsert(Draft("stale"));
  UserPatch patch;
  patch.email = "changed." + user.email;
  patch.expected_version = 7;

  StatusOr<User> updated = store_->Update(user.id, patch, kNowMs + 5);
  ASSERT_FALSE(updated.ok());
  EXPECT_EQ(updated.status().code(), StatusCode::kConflict);
  EXPECT_EQ(updated.status().conflict_kind(), ConflictKind::kVersionMismatch);
  EXPECT_EQ(updated.status().message(), "version mismatch: current version is 1");

  StatusOr<std::optional<User>> found = store_->FindById(user.id);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(**found, user);
}

TEST_F(MysqlUserStoreIntegrationTest, UpdateOfMissingIdIsNotFound) {
  UserPatch patch;
  patch.full_name = "Nobody";
  StatusOr<User> updated = store_->Update(std::int64_t{1} << 62, patch, kNowMs);
  ASSERT_FALSE(updated.ok());
  EXPECT_EQ(updated.status().code(), StatusCode::kNotFound);
}

TEST_F(MysqlUserStoreIntegrationTest, UpdateToTakenEmailIsDuplicateAndChangesNothing) {
  const User taken = MustInsert(Draft("take"));
  const User user = MustInsert(Draft("take"));
  UserPatch patch;
  patch.email = taken.email;
  patch.full_name = "Must Not Stick";

  StatusOr<User> updated = store_->Update(user.id, patch, kNowMs + 5);
  ASSERT_FALSE(updated.ok());
  EXPECT_EQ(updated.status().code(), StatusCode::kConflict);
  EXPECT_EQ(updated.status().conflict_kind(), ConflictKind::kDuplicate);
  EXPECT_EQ(updated.status().message(), "email already exists");

  StatusOr<std::optional<User>> found = store_->FindById(user.id);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(**found, user);
}

TEST_F(MysqlUserStoreIntegrationTest, DeleteReturnsVersionThenNotFound) {
  const User user = MustInsert(Draft("del"));
  UserPatch patch;
  patch.full_name = "Second Version";
  ASSERT_TRUE(store_->Update(user.id, patch, kNowMs + 1).ok());

  StatusOr<std::int64_t> deleted = store_->Delete(user.id);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(*deleted, 2);

  StatusOr<std::optional<User>> found = store_->FindById(user.id);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());

  StatusOr<std::int64_t> again = store_->Delete(user.id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kNotFound);
}

TEST_F(MysqlUserStoreIntegrationTest, FindByIdsReturnsOnlyExistingUsers) {
  const User a = MustInsert(Draft("many"));
  const User b = MustInsert(Draft("many"));
  const User c = MustInsert(Draft("many"));
  const std::int64_t missing = std::int64_t{1} << 61;
  const std::vector<std::int64_t> ids = {c.id, missing, a.id, b.id, a.id, missing + 1};

  StatusOr<std::vector<User>> found = store_->FindByIds(ids);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  std::vector<User> users = *found;
  std::sort(users.begin(), users.end(), [](const User& x, const User& y) { return x.id < y.id; });
  EXPECT_EQ(users, (std::vector<User>{a, b, c}));
}

TEST_F(MysqlUserStoreIntegrationTest, FindByIdsHandlesEveryBatchSize) {
  const User user = MustInsert(Draft("batch"));
  for (const std::size_t size :
       {std::size_t{1}, std::size_t{3}, std::size_t{999}, std::size_t{1000}, std::size_t{2500}}) {
    SCOPED_TRACE(size);
    std::vector<std::int64_t> ids;
    for (std::size_t i = 1; i < size; ++i) {
      ids.push_back((std::int64_t{1} << 60) + static_cast<std::int64_t>(i));
    }
    ids.push_back(user.id);
    StatusOr<std::vector<User>> found = store_->FindByIds(ids);
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    ASSERT_EQ(found->size(), 1u);
    EXPECT_EQ(found->front(), user);
  }
  StatusOr<std::vector<User>> none = store_->FindByIds({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(MysqlUserStoreIntegrationTest, ListAfterPagesToTheEnd) {
  std::vector<std::int64_t> mine;
  for (int i = 0; i < 7; ++i) mine.push_back(MustInsert(Draft("page")).id);

  std::vector<std::int64_t> seen;
  std::int64_t after = mine.front() - 1;
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 100000) << "paging does not end";
    StatusOr<std::vector<User>> page = store_->ListAfter(after, 3);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ASSERT_LE(page->size(), 3u);
    for (const User& user : *page) {
      EXPECT_GT(user.id, after);
      after = user.id;
      seen.push_back(user.id);
    }
    if (page->size() < 3) break;
  }
  // Other writers may add rows in between; ours must all appear, in order.
  EXPECT_TRUE(std::includes(seen.begin(), seen.end(), mine.begin(), mine.end()));

  StatusOr<std::vector<User>> past_the_end = store_->ListAfter(std::int64_t{1} << 62, 10);
  ASSERT_TRUE(past_the_end.ok());
  EXPECT_TRUE(past_the_end->empty());
}

TEST_F(MysqlUserStoreIntegrationTest, SearchMatchesUsernameOrEmailPrefixesByUsername) {
  // The run suffix makes the prefix unique; "S" ends it (no later counter
  // extends it), upper case where e-mails may have it.
  const std::string tag = "srch_" + RunSuffix() + "s";
  const User b =
      MustInsert({.username = tag + "b", .email = tag + "b@example.com", .full_name = "B"});
  const User a =
      MustInsert({.username = tag + "a", .email = tag + "a@example.com", .full_name = "A"});
  std::string upper = tag;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const User e = MustInsert(
      {.username = Username("other"), .email = upper + "Émile@Example.com", .full_name = "E"});
  std::vector<User> expected = {a, b, e};
  std::sort(expected.begin(), expected.end(),
            [](const User& x, const User& y) { return x.username < y.username; });

  StatusOr<std::vector<User>> all = store_->SearchByPrefix(tag, 20);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, expected);
  StatusOr<std::vector<User>> shouting = store_->SearchByPrefix(upper, 20);
  ASSERT_TRUE(shouting.ok());
  EXPECT_EQ(*shouting, expected);
  StatusOr<std::vector<User>> two = store_->SearchByPrefix(tag, 2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(*two, std::vector<User>(expected.begin(), expected.begin() + 2));
  // Lower-cased as MariaDB lower-cases e-mails, beyond ASCII too.
  StatusOr<std::vector<User>> accented = store_->SearchByPrefix(tag + "éMI", 20);
  ASSERT_TRUE(accented.ok());
  EXPECT_EQ(*accented, std::vector<User>{e});
  // Wildcards and the escape character stand for themselves.
  for (const std::string& literal : {std::string("srch%"), "srch_" + RunSuffix().substr(0, 3) + "_",
                                     "_" + tag.substr(1), tag + "!", tag + "\\"}) {
    StatusOr<std::vector<User>> none = store_->SearchByPrefix(literal, 20);
    ASSERT_TRUE(none.ok()) << literal << ": " << none.status().ToString();
    EXPECT_TRUE(none->empty()) << literal;
  }
}

// Past kSearchEmailRangeCap e-mail matches, the e-mail range is cut: the
// users matched by e-mail alone come from its first rows in e-mail order.
TEST_F(MysqlUserStoreIntegrationTest, SearchReadsAtMostTheCapOfTheEmailRange) {
  const std::string tag = "cap" + RunSuffix() + "s";
  constexpr int kUsers = kSearchEmailRangeCap + 20;
  std::vector<User> users;
  for (int i = 0; i < kUsers; ++i) {
    char local[16];
    std::snprintf(local, sizeof local, "%04d", i);
    // Usernames in the reverse order of the e-mails: the first by username
    // have the last e-mails.
    char name[16];
    std::snprintf(name, sizeof name, "%04d", kUsers - 1 - i);
    users.push_back(MustInsert({.username = "z" + RunSuffix() + name,
                                .email = tag + local + "@example.com",
                                .full_name = "Cap"}));
  }
  StatusOr<std::vector<User>> found = store_->SearchByPrefix(tag, 100);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), 100u);
  // The first 100 by username among the first kSearchEmailRangeCap e-mails:
  // e-mails 0000-0499 have usernames kUsers-1 ... kUsers-500, the smallest
  // of which are kUsers-500 and up.
  for (std::size_t i = 0; i < found->size(); ++i) {
    EXPECT_EQ((*found)[i], users[static_cast<std::size_t>(kSearchEmailRangeCap) - 1 - i]) << i;
  }
}

// The plan: a range on each unique index, never a scan; ANALYZE shows the
// rows each branch actually read.
TEST_F(MysqlUserStoreIntegrationTest, SearchIsTwoIndexRangesNeverAScan) {
  MysqlConnectionPool pool(options_);
  StatusOr<MysqlConnectionPool::Lease> lease = pool.Acquire();
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  sql::Connection& connection = (**lease).raw();
  // The prepared statement with its parameters as literals: what the
  // optimizer sees at execution.
  const std::vector<std::string> parameters = MysqlUserStore::SearchParameters("a", 20);
  std::string statement = MysqlUserStore::SearchStatement();
  std::unique_ptr<sql::Statement> plain(connection.createStatement());
  for (std::size_t i = 0, at = 0; i < parameters.size(); ++i) {
    at = statement.find('?', at);
    ASSERT_NE(at, std::string::npos);
    const bool number = i == 1 || i == 3;
    const std::string literal = number ? parameters[i] : "'" + parameters[i] + "'";
    statement.replace(at, 1, literal);
    at += literal.size();
  }
  std::unique_ptr<sql::ResultSet> plan(plain->executeQuery("ANALYZE FORMAT=JSON " + statement));
  ASSERT_TRUE(plan->next());
  const std::string text = plan->getString(1);
  const nlohmann::json analyzed = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(analyzed.is_discarded()) << text;
  // Every read of the users table (the temporary tables of the union and of
  // its ordering are read whole, as they should be: at most their rows).
  std::vector<nlohmann::json> reads;
  const std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& node) {
    if (node.is_object()) {
      if (node.value("table_name", "") == "users") reads.push_back(node);
      for (const auto& [key, child] : node.items()) walk(child);
    } else if (node.is_array()) {
      for (const auto& child : node) walk(child);
    }
  };
  walk(analyzed);
  ASSERT_EQ(reads.size(), 2u) << text;
  std::set<std::string> keys;
  for (const nlohmann::json& read : reads) {
    EXPECT_EQ(read.value("access_type", ""), "range") << read.dump();
    keys.insert(read.value("key", ""));
    EXPECT_LE(read.value("r_rows", 1e9), kSearchEmailRangeCap) << read.dump();
  }
  EXPECT_EQ(keys, (std::set<std::string>{"uk_users_username", "uk_users_email"})) << text;
}

TEST_F(MysqlUserStoreIntegrationTest, ConcurrentUnconditionalUpdatesAreAllApplied) {
  const User user = MustInsert(Draft("race"));
  constexpr int kThreads = 8;
  constexpr int kUpdatesPerThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kUpdatesPerThread; ++i) {
        UserPatch patch;
        patch.full_name = "writer " + std::to_string(t) + " update " + std::to_string(i);
        patch.expected_version = 0;
        if (!store_->Update(user.id, patch, kNowMs + i).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);

  StatusOr<std::optional<User>> found = store_->FindById(user.id);
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->version, 1 + kThreads * kUpdatesPerThread);
}

// Regression: MariaDB waits a day for a table lock by default, so with the
// users table locked every statement held its connection until the read
// timeout (5 s) dropped it, a write's outcome then unknown. Now a statement
// gives up after lock_wait_timeout_ms with "database busy" (nothing written)
// and its connection serves the next call. The lock is released after 10 s
// at the latest, so the old behaviour fails the test instead of hanging it.
TEST_F(MysqlUserStoreIntegrationTest, AStatementBehindALockedTableIsAnsweredBusyAndGoesOn) {
  const User user = MustInsert(Draft("locked"));
  options_.read_timeout_ms = 30'000;
  options_.lock_wait_timeout_ms = 1000;
  options_.pool_size = 1;
  MysqlUserStore store(options_);
  ASSERT_TRUE(store.FindById(user.id).ok());  // its one connection is open
  StatusOr<std::unique_ptr<MysqlConnection>> locker = MysqlConnection::Open(options_);
  ASSERT_TRUE(locker.ok()) << locker.status().ToString();
  (*locker)->Execute("LOCK TABLES users WRITE");
  std::promise<void> done;
  std::thread unlocker([&locker, finished = done.get_future()] {
    finished.wait_for(std::chrono::seconds(10));
    (*locker)->Execute("UNLOCK TABLES");
  });
  const StatusOr<std::optional<User>> read = store.FindById(user.id);
  const StatusOr<User> write =
      store.Update(user.id, UserPatch{.full_name = std::string("Behind the lock")}, kNowMs);
  done.set_value();
  unlocker.join();
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(read.status().message(), "database busy");
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.status().code(), StatusCode::kResourceExhausted);
  const StatusOr<std::optional<User>> after = store.FindById(user.id);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  ASSERT_TRUE(after->has_value());
  EXPECT_EQ((*after)->version, user.version);
  EXPECT_EQ((*after)->full_name, user.full_name);
}

TEST_F(MysqlUserStoreIntegrationTest, PingSucceeds) {
  const Status ping = store_->Ping();
  EXPECT_TRUE(ping.ok()) << ping.ToString();
}

TEST(MysqlUserStoreUnreachableTest, EveryCallIsUnavailable) {
  MysqlOptions options;
  options.host = "127.0.0.1";
  options.port = UnusedPort();
  options.user = "nobody";
  options.database = "nothing";
  MysqlUserStore store(options);

  const Status ping = store.Ping();
  EXPECT_EQ(ping.code(), StatusCode::kUnavailable) << ping.ToString();
  EXPECT_EQ(ping.message(), "database unavailable");
  StatusOr<User> inserted = store.Insert(UserDraft{"abc", "abc@example.com", "A"}, kNowMs);
  EXPECT_EQ(inserted.status().code(), StatusCode::kUnavailable);
  const StatusOr<std::vector<User>> found = store.SearchByPrefix("abc", 20);
  EXPECT_EQ(found.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(found.status().message(), "database unavailable");  // no SQL in it
  EXPECT_EQ(store.Migrate().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.pool().open_connections(), 0u);
}

class MysqlConnectionPoolIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::optional<MysqlOptions> options = OptionsFromEnvironment();
    ASSERT_TRUE(options.has_value());
    options_ = *options;
  }

  static std::int64_t ConnectionId(MysqlConnection& connection) {
    std::unique_ptr<sql::ResultSet> row(
        connection.Prepare("SELECT CONNECTION_ID()").executeQuery());
    row->next();
    return row->getInt64(1);
  }

  MysqlOptions options_;
};

TEST_F(MysqlConnectionPoolIntegrationTest, AcquireTimesOutWhenExhausted) {
  options_.pool_size = 1;
  options_.acquire_timeout_ms = 200;
  MysqlConnectionPool pool(options_);
  StatusOr<MysqlConnectionPool::Lease> held = pool.Acquire();
  ASSERT_TRUE(held.ok()) << held.status().ToString();

  const auto start = std::chrono::steady_clock::now();
  StatusOr<MysqlConnectionPool::Lease> second = pool.Acquire();
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(second.status().message(), "database connection pool exhausted");
  EXPECT_GE(waited, std::chrono::milliseconds(150));
  EXPECT_EQ(pool.open_connections(), 1u);
}

TEST_F(MysqlConnectionPoolIntegrationTest, ReleasedConnectionIsReusedAndWakesWaiter) {
  options_.pool_size = 1;
  options_.acquire_timeout_ms = 5000;
  MysqlConnectionPool pool(options_);
  std::int64_t first_id = 0;
  std::thread waiter;
  {
    StatusOr<MysqlConnectionPool::Lease> held = pool.Acquire();
    ASSERT_TRUE(held.ok());
    first_id = ConnectionId(**held);
    waiter = std::thread([&] {
      StatusOr<MysqlConnectionPool::Lease> next = pool.Acquire();
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      EXPECT_TRUE((*next).reused());
      EXPECT_EQ(ConnectionId(**next), first_id);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  waiter.join();
  EXPECT_EQ(pool.open_connections(), 1u);
}

TEST_F(MysqlConnectionPoolIntegrationTest, KilledConnectionIsDiscardedNotReused) {
  options_.pool_size = 1;
  MysqlConnectionPool pool(options_);
  std::int64_t killed_id = 0;
  {
    StatusOr<MysqlConnectionPool::Lease> lease = pool.Acquire();
    ASSERT_TRUE(lease.ok());
    killed_id = ConnectionId(**lease);
  }
  StatusOr<std::unique_ptr<MysqlConnection>> admin = MysqlConnection::Open(options_);
  ASSERT_TRUE(admin.ok());
  (*admin)->Execute("KILL CONNECTION " + std::to_string(killed_id));

  {
    StatusOr<MysqlConnectionPool::Lease> lease = pool.Acquire();
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE((*lease).reused());
    try {
      ConnectionId(**lease);
      ADD_FAILURE() << "a killed connection answered";
    } catch (const sql::SQLException&) {
      (*lease)->MarkBroken();
    }
  }
  EXPECT_EQ(pool.open_connections(), 0u);

  StatusOr<MysqlConnectionPool::Lease> fresh = pool.Acquire();
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE((*fresh).reused());
  EXPECT_NE(ConnectionId(**fresh), killed_id);
}

// Regression: after a MariaDB restart the pool handed its idle (dead)
// connections out one by one, so up to the pool size of requests failed.
TEST_F(MysqlConnectionPoolIntegrationTest, DropIdleClosesEveryIdleConnection) {
  options_.pool_size = 3;
  options_.validate_after_idle_ms = 3'600'000;  // no ping before reuse
  MysqlConnectionPool pool(options_);
  std::vector<std::int64_t> ids;
  {
    std::vector<MysqlConnectionPool::Lease> leases;
    for (int i = 0; i < 3; ++i) {
      StatusOr<MysqlConnectionPool::Lease> lease = pool.Acquire();
      ASSERT_TRUE(lease.ok()) << lease.status().ToString();
      ids.push_back(ConnectionId(**lease));
      leases.push_back(std::move(*lease));
    }
  }
  ASSERT_EQ(pool.open_connections(), 3u);
  StatusOr<std::unique_ptr<MysqlConnection>> admin = MysqlConnection::Open(options_);
  ASSERT_TRUE(admin.ok());
  for (const std::int64_t id : ids) (*admin)->Execute("KILL CONNECTION " + std::to_string(id));

  pool.DropIdle();
  EXPECT_EQ(pool.open_connections(), 0u);
  StatusOr<MysqlConnectionPool::Lease> fresh = pool.Acquire();
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE((*fresh).reused());
  const std::int64_t fresh_id = ConnectionId(**fresh);
  for (const std::int64_t id : ids) EXPECT_NE(fresh_id, id);
}

TEST_F(MysqlConnectionPoolIntegrationTest, StoreReadRetriesOnceOnAStaleConnection) {
  StatusOr<std::unique_ptr<MysqlConnection>> admin = MysqlConnection::Open(options_);
  ASSERT_TRUE(admin.ok());
  sql::PreparedStatement& sessions = (*admin)->Prepare(
      "SELECT id FROM information_schema.PROCESSLIST WHERE user = ? AND id <> CONNECTION_ID()");
  sessions.setString(1, options_.user);
  auto session_ids = [&] {
    std::set<std::int64_t> ids;
    std::unique_ptr<sql::ResultSet> rows(sessions.executeQuery());
    while (rows->next()) ids.insert(rows->getInt64(1));
    return ids;
  };

  // The store's one connection is the only session that appears across its
  // first Ping; other test processes may share the server, so retry until
  // that is unambiguous rather than kill a session that is not ours.
  options_.pool_size = 1;
  for (int attempt = 0; attempt < 20; ++attempt) {
    const std::set<std::int64_t> before = session_ids();
    MysqlUserStore store(options_);
    ASSERT_TRUE(store.Ping().ok());
    std::vector<std::int64_t> appeared;
    for (const std::int64_t id : session_ids()) {
      if (!before.contains(id)) appeared.push_back(id);
    }
    if (appeared.size() != 1) continue;

    (*admin)->Execute("KILL CONNECTION " + std::to_string(appeared.front()));
    const Status ping = store.Ping();
    EXPECT_TRUE(ping.ok()) << ping.ToString();
    EXPECT_EQ(store.pool().open_connections(), 1u);
    return;
  }
  FAIL() << "could not single out the store's connection among the server's sessions";
}

}  // namespace
}  // namespace polycrud
