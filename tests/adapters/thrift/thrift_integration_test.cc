// End-to-end tests of polycrud-server through a real Thrift client, against
// the real MariaDB and Redis of the test stack (or private instances for the
// degraded modes).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <thrift/transport/TTransportException.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/eventually.h"
#include "tests/support/server_process.h"
#include "tests/support/stack.h"

namespace polycrud::testing {
namespace {

using namespace std::chrono_literals;

int TestMysqlPort() { return std::stoi(Setting("POLYCRUD_TEST_MYSQL_PORT")); }
int TestRedisPort() { return std::stoi(Setting("POLYCRUD_TEST_REDIS_PORT")); }

// A username unique to this run, so reruns against one database never clash.
std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  static const auto run = std::to_string(std::random_device{}() % 1'000'000);
  return prefix + "_" + run + "_" + std::to_string(counter++);
}

gen::UserDraft Draft(const std::string& name, const std::string& full_name = "Test User") {
  gen::UserDraft d;
  d.username = name;
  d.email = name + "@example.com";
  d.full_name = full_name;
  return d;
}

std::int64_t CountRows(int mysql_port) {
  return std::stoll(MysqlQuery(mysql_port, "SELECT COUNT(*) FROM users"));
}

class ThriftCrudTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerProcess* server_;
  ThriftClient client_{server_->thrift_port()};
};
ServerProcess* ThriftCrudTest::server_ = nullptr;

TEST_F(ThriftCrudTest, PingNeedsNoToken) {
  std::string out;
  client_->ping(out);
  EXPECT_EQ(out.rfind("polycrud ", 0), 0u) << out;
}

TEST_F(ThriftCrudTest, CreateGetUpdateListDeleteRoundTrip) {
  const std::string name = UniqueName("crud");
  const std::string full_name = "Zoë \"Q\" O'Brien 🚀 '; DROP TABLE users; --";
  gen::User created;
  client_->createUser(created, kAdminToken, Draft(name, full_name));
  EXPECT_GT(created.id, 0);
  EXPECT_EQ(created.version, 1);
  EXPECT_EQ(created.full_name, full_name);
  EXPECT_GT(created.created_at_ms, 0);
  EXPECT_EQ(created.created_at_ms, created.updated_at_ms);

  gen::User fetched;
  client_->getUser(fetched, kReaderToken, created.id);
  EXPECT_EQ(fetched, created);

  gen::UserPatch patch;
  patch.__set_email(name + "@example.org");
  patch.expected_version = 1;
  gen::User updated;
  client_->updateUser(updated, kAdminToken, created.id, patch);
  EXPECT_EQ(updated.version, 2);
  EXPECT_EQ(updated.email, name + "@example.org");
  EXPECT_EQ(updated.full_name, full_name);  // untouched field kept
  EXPECT_EQ(updated.username, name);

  gen::UserPage page;
  client_->listUsers(page, kReaderToken, created.id - 1, 1);
  ASSERT_EQ(page.users.size(), 1u);
  EXPECT_EQ(page.users[0], updated);

  client_->deleteUser(kAdminToken, created.id);
  EXPECT_THROW(client_->getUser(fetched, kAdminToken, created.id), gen::NotFound);
  EXPECT_THROW(client_->deleteUser(kAdminToken, created.id), gen::NotFound);
}

TEST_F(ThriftCrudTest, ListUsersPagesToTheEnd) {
  std::vector<std::int64_t> mine;
  for (int i = 0; i < 5; ++i) {
    gen::User u;
    client_->createUser(u, kAdminToken, Draft(UniqueName("page")));
    mine.push_back(u.id);
  }
  std::vector<std::int64_t> seen;
  std::int64_t after = mine.front() - 1;
  for (int pages = 0; pages < 1000; ++pages) {
    gen::UserPage page;
    client_->listUsers(page, kReaderToken, after, 2);
    EXPECT_LE(page.users.size(), 2u);
    for (const auto& u : page.users) {
      EXPECT_GT(u.id, after);
      seen.push_back(u.id);
    }
    if (page.next_after_id == 0) break;
    EXPECT_EQ(page.next_after_id, page.users.back().id);
    after = page.next_after_id;
  }
  ASSERT_GE(seen.size(), mine.size());
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::vector<std::int64_t>(seen.begin(), seen.begin() + 5), mine);
}

TEST_F(ThriftCrudTest, BatchGetKeepsRequestOrderAndOmitsMissing) {
  gen::User a, b;
  client_->createUser(a, kAdminToken, Draft(UniqueName("batch")));
  client_->createUser(b, kAdminToken, Draft(UniqueName("batch")));
  std::vector<gen::User> out;
  client_->batchGetUsers(out, kReaderToken, {b.id, 999'999'999, a.id});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].id, b.id);
  EXPECT_EQ(out[1].id, a.id);
}

TEST_F(ThriftCrudTest, ErrorsMapToTheDeclaredExceptions) {
  gen::User u;
  client_->createUser(u, kAdminToken, Draft(UniqueName("err")));
  gen::User out;

  try {
    client_->createUser(out, kAdminToken, Draft("Bad Name"));
    FAIL() << "expected InvalidArgument";
  } catch (const gen::InvalidArgument& e) {
    EXPECT_EQ(e.field, "username");
  }
  EXPECT_THROW(client_->getUser(out, "", u.id), gen::Unauthenticated);
  EXPECT_THROW(client_->getUser(out, "wrong-token", u.id), gen::Unauthenticated);
  EXPECT_THROW(client_->createUser(out, kReaderToken, Draft(UniqueName("r"))),
               gen::PermissionDenied);
  EXPECT_THROW(client_->deleteUser(kReaderToken, u.id), gen::PermissionDenied);
  EXPECT_THROW(client_->getUser(out, kAdminToken, 987'654'321), gen::NotFound);
  EXPECT_THROW(client_->getUser(out, kAdminToken, 0), gen::InvalidArgument);
  EXPECT_THROW(client_->createUser(out, kAdminToken, Draft(u.username)), gen::Conflict);
  gen::UserDraft same_email = Draft(UniqueName("err"));
  same_email.email = u.email;
  for (char& c : same_email.email) c = static_cast<char>(std::toupper(c));
  EXPECT_THROW(client_->createUser(out, kAdminToken, same_email), gen::Conflict);
  gen::UserPatch stale;
  stale.__set_full_name("New");
  stale.expected_version = 7;
  EXPECT_THROW(client_->updateUser(out, kAdminToken, u.id, stale), gen::Conflict);
  std::vector<gen::User> users;
  EXPECT_THROW(client_->batchGetUsers(users, kAdminToken, {}), gen::InvalidArgument);
  std::vector<std::int64_t> too_many(1001, u.id);
  EXPECT_THROW(client_->batchGetUsers(users, kAdminToken, too_many), gen::InvalidArgument);
  gen::UserPage page;
  EXPECT_THROW(client_->listUsers(page, kAdminToken, 0, 1001), gen::InvalidArgument);
  EXPECT_THROW(client_->listUsers(page, kAdminToken, -1, 10), gen::InvalidArgument);
}

TEST_F(ThriftCrudTest, RejectedInputChangesNothing) {
  gen::User u;
  client_->createUser(u, kAdminToken, Draft(UniqueName("keep")));
  const std::int64_t rows = CountRows(TestMysqlPort());
  gen::User out;
  std::vector<gen::UserDraft> bad = {Draft("ab"), Draft(UniqueName("x")), Draft(UniqueName("y"))};
  bad[1].email = "no-at-sign";
  bad[2].full_name = std::string("bad\x01name");
  for (const auto& d : bad)
    EXPECT_THROW(client_->createUser(out, kAdminToken, d), gen::InvalidArgument);
  gen::UserPatch patch;
  patch.__set_full_name(std::string(129, 'x'));
  EXPECT_THROW(client_->updateUser(out, kAdminToken, u.id, patch), gen::InvalidArgument);
  patch.__set_full_name("\xff\xfe");
  EXPECT_THROW(client_->updateUser(out, kAdminToken, u.id, patch), gen::InvalidArgument);
  EXPECT_EQ(CountRows(TestMysqlPort()), rows);
  client_->getUser(out, kAdminToken, u.id);
  EXPECT_EQ(out, u);
}

TEST(ThriftCompactProtocolTest, ServesCompactWhenConfigured) {
  ServerProcess server({.extra_args = {"--thrift-protocol", "compact"}});
  ThriftClient client(server.thrift_port(), /*compact=*/true);
  gen::User u;
  client->createUser(u, kAdminToken, Draft(UniqueName("compact")));
  gen::User fetched;
  client->getUser(fetched, kAdminToken, u.id);
  EXPECT_EQ(fetched, u);
}

class ThriftServerModelTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ThriftServerModelTest, ServesCrudOverManyConnections) {
  ServerProcess server({.extra_args = {"--thrift-server", GetParam()}});
  std::vector<std::unique_ptr<ThriftClient>> clients;
  for (int i = 0; i < 8; ++i)
    clients.push_back(std::make_unique<ThriftClient>(server.thrift_port()));
  std::vector<gen::User> users(clients.size());
  for (std::size_t i = 0; i < clients.size(); ++i) {
    (*clients[i])->createUser(users[i], kAdminToken, Draft(UniqueName("model")));
  }
  for (std::size_t i = 0; i < clients.size(); ++i) {
    gen::User fetched;
    (*clients[(i + 1) % clients.size()])->getUser(fetched, kAdminToken, users[i].id);
    EXPECT_EQ(fetched, users[i]);
  }
  gen::User fetched;
  EXPECT_THROW((*clients[0])->getUser(fetched, kAdminToken, 987'654'321), gen::NotFound);
  EXPECT_EQ(server.Terminate(), 0);
}

INSTANTIATE_TEST_SUITE_P(Models, ThriftServerModelTest,
                         ::testing::Values("threadpool", "nonblocking", "fibers"));

class ThriftConnectionLimitTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ThriftConnectionLimitTest, ConnectionsBeyondTheLimitAreClosed) {
  ServerProcess server(
      {.extra_args = {"--thrift-server", GetParam(), "--thrift-max-connections", "2"}});
  // A served connection; retried while the server still counts the probe
  // connection of the start-up check, until it has seen that one close.
  auto served = [&] {
    std::unique_ptr<ThriftClient> client;
    EXPECT_TRUE(Eventually([&] {
      client = std::make_unique<ThriftClient>(server.thrift_port());
      std::string pong;
      try {
        (*client)->ping(pong);
        return true;
      } catch (const apache::thrift::transport::TTransportException&) {
        return false;
      }
    }));
    return client;
  };
  std::unique_ptr<ThriftClient> first = served();
  std::unique_ptr<ThriftClient> second = served();
  std::string pong;
  {
    ThriftClient third(server.thrift_port());
    EXPECT_THROW(third->ping(pong), apache::thrift::transport::TTransportException);
  }
  (*first)->ping(pong);  // the two within the limit are served on
  (*second)->ping(pong);
  EXPECT_FALSE(pong.empty());
}

// The nonblocking model: Thrift's own overload check (CLOSE_ON_ACCEPT).
INSTANTIATE_TEST_SUITE_P(Models, ThriftConnectionLimitTest,
                         ::testing::Values("fibers", "nonblocking"));

TEST(ThriftServerLimitsTest, OversizedFrameClosesTheConnectionAndServerLivesOn) {
  ServerProcess server({.extra_args = {"--thrift-max-frame-bytes", "4096"}});
  {
    ThriftClient client(server.thrift_port());
    gen::UserDraft huge = Draft(UniqueName("huge"));
    huge.full_name = std::string(8192, 'x');
    gen::User out;
    EXPECT_THROW(client->createUser(out, kAdminToken, huge),
                 apache::thrift::transport::TTransportException);
  }
  ThriftClient client(server.thrift_port());
  std::string pong;
  client->ping(pong);
  EXPECT_FALSE(pong.empty());
}

TEST(ThriftServerLimitsTest, IdleConnectionsAreClosed) {
  ServerProcess server({.extra_args = {"--idle-timeout-ms", "300"}});
  ThriftClient client(server.thrift_port());
  std::string pong;
  client->ping(pong);
  std::this_thread::sleep_for(1s);
  EXPECT_THROW(client->ping(pong), apache::thrift::transport::TTransportException);
}

// Regression: the read timeout restarted on every byte, so a client sending
// one byte now and then held its connection (and a descriptor, and in the
// threadpool model a worker) forever.
class ThriftRequestTimeoutTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ThriftRequestTimeoutTest, ARequestTrickledByteByByteIsCutOffAtTheRequestTimeout) {
  ServerProcess server(
      {.extra_args = {"--thrift-server", GetParam(), "--thrift-request-timeout-ms", "1000"}});
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(server.thrift_port()));
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  // A frame header announcing 64 bytes, then one byte every 200 ms: each
  // byte comes well within the idle timeout (30 s).
  const unsigned char header[4] = {0, 0, 0, 64};
  const auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (int i = 0; i < 4 + 40 && !closed; ++i) {
    const unsigned char byte = i < 4 ? header[i] : 0;
    if (send(fd, &byte, 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 200) == 1) {
      char c = 0;
      closed = recv(fd, &c, 1, 0) <= 0;
    }
  }
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  close(fd);
  EXPECT_TRUE(closed) << "the server kept a trickling request open for " << took << " s";
  EXPECT_LT(took, 3.0);
  // Requests that arrive in time are served as before.
  ThriftClient client(server.thrift_port());
  std::string pong;
  client->ping(pong);
  EXPECT_FALSE(pong.empty());
}

INSTANTIATE_TEST_SUITE_P(Models, ThriftRequestTimeoutTest,
                         ::testing::Values("fibers", "threadpool"));

TEST(ThriftServerShutdownTest, SigtermExitsCleanly) {
  ServerProcess server;
  ThriftClient client(server.thrift_port());
  std::string pong;
  client->ping(pong);
  EXPECT_EQ(server.Terminate(), 0);
}

// --- Cache-aside, seen from outside -------------------------------------

TEST(CacheAsideTest, GetFillsRedisAndHidesChangesBehindTheServicesBackUntilAWrite) {
  ServerProcess server;
  ThriftClient client(server.thrift_port());
  gen::User u;
  client->createUser(u, kAdminToken, Draft(UniqueName("aside"), "Original"));
  const std::string key = "user:" + std::to_string(u.id);
  gen::User out;
  client->getUser(out, kReaderToken, u.id);
  std::optional<std::string> cached = RedisGet(TestRedisPort(), key);
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(cached->rfind("U|1|", 0), 0u) << *cached;

  MysqlQuery(TestMysqlPort(),
             "UPDATE users SET full_name='Changed behind' WHERE id=" + std::to_string(u.id));
  client->getUser(out, kReaderToken, u.id);
  EXPECT_EQ(out.full_name, "Original");  // served from the cache

  gen::UserPatch patch;
  patch.__set_email(u.username + "@changed.example");
  client->updateUser(out, kAdminToken, u.id, patch);
  client->getUser(out, kReaderToken, u.id);
  EXPECT_EQ(out.full_name, "Changed behind");
  EXPECT_EQ(out.version, 2);
  EXPECT_EQ(RedisGet(TestRedisPort(), key)->rfind("U|2|", 0), 0u);
}

TEST(CacheAsideTest, ChangesBehindTheServicesBackShowAfterTheTtl) {
  ServerProcess server({.extra_args = {"--cache-ttl-s", "1"}});
  ThriftClient client(server.thrift_port());
  gen::User u;
  client->createUser(u, kAdminToken, Draft(UniqueName("ttl"), "Original"));
  gen::User out;
  client->getUser(out, kReaderToken, u.id);
  MysqlQuery(TestMysqlPort(),
             "UPDATE users SET full_name='After TTL' WHERE id=" + std::to_string(u.id));
  client->getUser(out, kReaderToken, u.id);
  EXPECT_EQ(out.full_name, "Original");
  EXPECT_TRUE(Eventually([&] {
    client->getUser(out, kReaderToken, u.id);
    return out.full_name == "After TTL";
  }));
}

TEST(CacheAsideTest, DeleteLeavesATombstoneAndAbsentIdsAreCachedNegatively) {
  ServerProcess server;
  ThriftClient client(server.thrift_port());
  gen::User u;
  client->createUser(u, kAdminToken, Draft(UniqueName("tomb")));
  client->deleteUser(kAdminToken, u.id);
  EXPECT_EQ(RedisGet(TestRedisPort(), "user:" + std::to_string(u.id)), "D|1|");
  gen::User out;
  const std::int64_t absent = 900'000'000 + u.id;
  EXPECT_THROW(client->getUser(out, kReaderToken, absent), gen::NotFound);
  EXPECT_EQ(RedisGet(TestRedisPort(), "user:" + std::to_string(absent)), "N|0|");
}

TEST(CacheAsideTest, BatchGetFillsEveryMissInOneGoAndServesHitsAfterwards) {
  ServerProcess server;
  ThriftClient client(server.thrift_port());
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 30; ++i) {
    gen::User u;
    client->createUser(u, kAdminToken, Draft(UniqueName("bfill")));
    ids.push_back(u.id);
  }
  std::string del = "DEL";
  for (const std::int64_t id : ids) del += " user:" + std::to_string(id);
  ASSERT_EQ(RedisCli(TestRedisPort(), del + " >/dev/null"), 0);
  std::vector<gen::User> out;
  client->batchGetUsers(out, kReaderToken, ids);
  ASSERT_EQ(out.size(), ids.size());
  for (const std::int64_t id : ids) {
    std::optional<std::string> cached = RedisGet(TestRedisPort(), "user:" + std::to_string(id));
    ASSERT_TRUE(cached.has_value()) << "id " << id << " was not filled";
    EXPECT_EQ(cached->rfind("U|1|", 0), 0u);
  }
  // Changed behind the service's back: a batch served from the cache hides it.
  MysqlQuery(TestMysqlPort(),
             "UPDATE users SET full_name='hidden' WHERE id=" + std::to_string(ids[0]));
  client->batchGetUsers(out, kReaderToken, ids);
  EXPECT_NE(out[0].full_name, "hidden");
}

// --- Concurrency: the invariant of docs/cache-protocol.md ----------------------------

TEST(CacheInvariantTest, RandomConcurrentCrudOnHotIdsKeepsCacheEqualToMysql) {
  ServerProcess server;
  constexpr int kThreads = 8;
  constexpr int kOpsPerThread = 300;
  std::vector<std::int64_t> hot;
  {
    ThriftClient client(server.thrift_port());
    for (int i = 0; i < 4; ++i) {
      gen::User u;
      client->createUser(u, kAdminToken, Draft(UniqueName("hot")));
      hot.push_back(u.id);
    }
  }
  std::mutex mu;
  std::map<std::int64_t, int> acked_updates;  // per id, across threads
  std::vector<std::int64_t> all_ids = hot;
  std::atomic<int> violations{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ThriftClient client(server.thrift_port());
      std::mt19937 rng(static_cast<unsigned>(t));
      std::map<std::int64_t, std::int64_t> floor;  // highest version this client saw
      std::vector<std::int64_t> ids = hot;
      for (int op = 0; op < kOpsPerThread; ++op) {
        const std::int64_t id = ids[rng() % ids.size()];
        const auto dice = static_cast<unsigned>(rng() % 100);
        gen::User out;
        try {
          if (dice < 60) {
            client->getUser(out, kReaderToken, id);
            if (out.version < floor[id]) ++violations;
            floor[id] = std::max(floor[id], out.version);
          } else if (dice < 95) {
            gen::UserPatch p;
            p.__set_full_name("t" + std::to_string(t) + " op" + std::to_string(op));
            client->updateUser(out, kAdminToken, id, p);
            if (out.version <= floor[id]) ++violations;
            floor[id] = out.version;
            std::lock_guard lock(mu);
            ++acked_updates[id];
          } else if (dice < 98) {
            client->createUser(out, kAdminToken, Draft(UniqueName("new")));
            std::lock_guard lock(mu);
            all_ids.push_back(out.id);
          } else {
            client->deleteUser(kAdminToken, id);
            std::lock_guard lock(mu);
            acked_updates[id] = -1'000'000;  // gone
          }
        } catch (const gen::NotFound&) {
          // deleted by another thread: fine
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(violations.load(), 0) << "a client saw a version older than one it had seen";

  for (const std::int64_t id : all_ids) {
    const std::string row =
        MysqlQuery(TestMysqlPort(), "SELECT version FROM users WHERE id=" + std::to_string(id));
    std::optional<std::string> cached = RedisGet(TestRedisPort(), "user:" + std::to_string(id));
    if (row.empty()) {
      EXPECT_TRUE(!cached || cached->rfind("U|", 0) != 0) << "deleted id " << id << " cached";
      continue;
    }
    const std::int64_t version = std::stoll(row);
    if (acked_updates.contains(id) && acked_updates[id] >= 0) {
      EXPECT_EQ(version, 1 + acked_updates[id]) << "lost or phantom update on id " << id;
    }
    if (cached && cached->rfind("U|", 0) == 0) {
      EXPECT_EQ(cached->rfind("U|" + std::to_string(version) + "|", 0), 0u)
          << "id " << id << " cached " << *cached << " but MySQL has version " << version;
    }
  }
}

// --- Degraded modes ------------------------------------------------------

TEST(DegradedRedisTest, ReadsSurviveRedisStopAndTheCacheIsUsedAgainAfterRestart) {
  RedisInstance redis("degraded-redis");
  ServerProcess server({.redis_port = redis.port()});
  ThriftClient client(server.thrift_port());
  std::vector<gen::User> users(3);
  for (auto& u : users) client->createUser(u, kAdminToken, Draft(UniqueName("dr")));
  gen::User out;
  client->getUser(out, kReaderToken, users[0].id);
  ASSERT_TRUE(RedisGet(redis.port(), "user:" + std::to_string(users[0].id)).has_value());

  redis.Stop();
  for (int round = 0; round < 20; ++round) {
    for (const auto& u : users) {
      client->getUser(out, kReaderToken, u.id);
      EXPECT_EQ(out, u);
    }
  }
  gen::UserPatch patch;
  patch.__set_full_name("Written while Redis is down");
  gen::User updated;
  client->updateUser(updated, kAdminToken, users[1].id, patch);
  client->getUser(out, kReaderToken, users[1].id);
  EXPECT_EQ(out.version, updated.version);

  redis.Start();
  const std::string key = "user:" + std::to_string(users[2].id);
  EXPECT_TRUE(Eventually([&] {
    client->getUser(out, kReaderToken, users[2].id);
    return RedisGet(redis.port(), key).has_value();
  })) << "the cache was not used again after Redis came back";
  client->getUser(out, kReaderToken, users[1].id);
  EXPECT_EQ(out.full_name, "Written while Redis is down");
}

TEST(DegradedMysqlTest, CachedReadsSurviveAndWritesAreUnavailableWithNothingHalfWritten) {
  // Private instances of both: this database numbers ids from 1 again.
  MariadbInstance mysql("degraded-mysql");
  RedisInstance redis("degraded-mysql-redis");
  ServerProcess server({.mysql_port = mysql.port(), .redis_port = redis.port()});
  ThriftClient client(server.thrift_port());
  gen::User cached_user, uncached_user;
  client->createUser(cached_user, kAdminToken, Draft(UniqueName("dm")));
  client->createUser(uncached_user, kAdminToken, Draft(UniqueName("dm")));
  // Creation already put both in the cache; drop one so it must come from MySQL.
  RedisCli(redis.port(), "DEL user:" + std::to_string(uncached_user.id) + " >/dev/null");
  gen::User out;
  client->getUser(out, kReaderToken, cached_user.id);
  const std::int64_t rows_before = CountRows(mysql.port());

  mysql.Stop();
  client->getUser(out, kReaderToken, cached_user.id);
  EXPECT_EQ(out, cached_user);
  EXPECT_THROW(client->getUser(out, kReaderToken, uncached_user.id), gen::Unavailable);
  EXPECT_THROW(client->createUser(out, kAdminToken, Draft(UniqueName("dm"))), gen::Unavailable);
  gen::UserPatch patch;
  patch.__set_full_name("never written");
  EXPECT_THROW(client->updateUser(out, kAdminToken, cached_user.id, patch), gen::Unavailable);
  EXPECT_THROW(client->deleteUser(kAdminToken, cached_user.id), gen::Unavailable);
  gen::UserPage page;
  EXPECT_THROW(client->listUsers(page, kReaderToken, 0, 10), gen::Unavailable);

  mysql.Start();
  EXPECT_EQ(CountRows(mysql.port()), rows_before);
  EXPECT_EQ(MysqlQuery(mysql.port(), "SELECT version, full_name FROM users WHERE id=" +
                                         std::to_string(cached_user.id)),
            "1\tTest User\n");
  EXPECT_TRUE(Eventually([&] {
    try {
      client->createUser(out, kAdminToken, Draft(UniqueName("dm")));
      return true;
    } catch (const gen::Unavailable&) {
      return false;
    }
  })) << "writes did not recover after MariaDB came back";
}

// Regression: after MariaDB restarted, the pool handed its idle connections
// (all dead) out one by one, and a read retried only once, so the first
// requests failed although MariaDB was back.
TEST(DegradedMysqlTest, AfterAMariadbRestartNoRequestFailsOnADeadPooledConnection) {
  MariadbInstance mysql("restart-mysql");
  RedisInstance redis("restart-mysql-redis");
  ServerProcess server({.mysql_port = mysql.port(),
                        .redis_port = redis.port(),
                        .extra_args = {"--mysql-pool-size", "4"}});
  {
    // Concurrent store reads open several pooled connections.
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c) {
      clients.emplace_back([&] {
        ThriftClient client(server.thrift_port());
        gen::UserPage page;
        for (int i = 0; i < 50; ++i) client->listUsers(page, kReaderToken, 0, 10);
      });
    }
    for (std::thread& t : clients) t.join();
  }
  mysql.Stop();
  mysql.Start();
  ThriftClient client(server.thrift_port());
  gen::UserPage page;
  for (int i = 0; i < 8; ++i) {
    EXPECT_NO_THROW(client->listUsers(page, kReaderToken, 0, 10)) << "request " << i;
  }
}

}  // namespace
}  // namespace polycrud::testing
