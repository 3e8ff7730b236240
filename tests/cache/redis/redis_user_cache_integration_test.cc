// RedisPipelinedConnection, RedisFiberConnection and RedisUserCache against a real Redis (the test
// stack's, or a private instance for the tests that stop it), plus a silent
// TCP peer for timeouts and the bounded queue.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache/redis/redis_fiber_connection.h"
#include "cache/redis/redis_pipelined_connection.h"
#include "cache/redis/redis_pipes.h"
#include "cache/redis/redis_user_cache.h"
#include "runtime/fiber_scheduler.h"
#include "tests/support/eventually.h"
#include "tests/support/server_process.h"
#include "tests/support/settings.h"
#include "tests/support/stack.h"

namespace polycrud::testing {
namespace {

using namespace std::chrono_literals;

int TestRedisPort() { return std::stoi(Setting("POLYCRUD_TEST_REDIS_PORT")); }

// Keys unique to this run, so reruns against one Redis never clash.
std::string UniqueKey(const std::string& prefix) {
  static std::atomic<int> counter{0};
  static const auto run = std::to_string(std::random_device{}() % 1'000'000);
  return "test:" + prefix + ":" + run + ":" + std::to_string(counter++);
}

std::int64_t UniqueId() {
  static std::atomic<std::int64_t> counter{0};
  static const std::int64_t base =
      4'000'000'000 + static_cast<std::int64_t>(std::random_device{}() % 1'000'000) * 1000;
  return base + counter++;
}

// The test stack's Redis on `port`, logged in as the server's ACL user.
RedisEndpoint Endpoint(int port) {
  return {.host = "127.0.0.1",
          .port = port,
          .user = Setting("POLYCRUD_TEST_REDIS_USER"),
          .password = Setting("POLYCRUD_TEST_REDIS_PASSWORD"),
          .connect_timeout = 200ms,
          .command_timeout = 1000ms};
}

RedisPipelineOptions Options(int port) {
  return {.endpoint = Endpoint(port), .reconnect_interval = 50ms};
}

// Logged in as the admin user: the transport tests send commands (ECHO)
// that the server's user may not run.
RedisPipelineOptions AdminOptions(int port) {
  RedisPipelineOptions options = Options(port);
  options.endpoint.user = "admin";
  options.endpoint.password = Setting("POLYCRUD_TEST_REDIS_ADMIN_PASSWORD");
  return options;
}

// A peer that is not Redis: no login (it would never answer AUTH).
RedisPipelineOptions PeerOptions(int port) {
  RedisPipelineOptions options = Options(port);
  options.endpoint.user.clear();
  options.endpoint.password.clear();
  return options;
}

std::string ReplyText(const RedisReplyPtr& reply) { return std::string(reply->str, reply->len); }

// A TCP peer that accepts connections and never answers.
class SilentPeer {
 public:
  SilentPeer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(fd_, 16) != 0) {
      throw std::runtime_error("cannot listen");
    }
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentPeer() { close(fd_); }
  SilentPeer(const SilentPeer&) = delete;
  SilentPeer& operator=(const SilentPeer&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(RedisPipelinedConnectionTest, EveryCallerGetsItsOwnReplyUnderConcurrency) {
  RedisPipelinedConnection connection(AdminOptions(TestRedisPort()));
  ASSERT_TRUE(connection.connected());
  constexpr int kThreads = 16;
  constexpr int kPerThread = 2000;
  std::atomic<int> wrong{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string text = std::to_string(t) + "/" + std::to_string(i);
        StatusOr<RedisReplyPtr> reply = connection.Command({"ECHO", text});
        if (!reply.ok()) {
          failed.fetch_add(1);
        } else if ((*reply)->type != REDIS_REPLY_STRING || ReplyText(*reply) != text) {
          wrong.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(connection.pending(), 0u);
  // Concurrent commands shared writes: fewer writes than commands.
  EXPECT_LT(connection.sends(), static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(connection.connects(), 1u);
}

TEST(RedisPipelinedConnectionTest, CommandsOfOneCallerStayTogetherAndInOrder) {
  RedisPipelinedConnection connection(AdminOptions(TestRedisPort()));
  constexpr int kThreads = 8;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      const std::string key = UniqueKey("batch");
      for (int i = 1; i <= 300; ++i) {
        StatusOr<std::vector<RedisReplyPtr>> replies = connection.Commands(
            {{"SET", key, "0"}, {"INCR", key}, {"INCRBY", key, std::to_string(i)}, {"GET", key}});
        if (!replies.ok() || replies->size() != 4 || (*replies)[1]->integer != 1 ||
            (*replies)[2]->integer != i + 1 || ReplyText((*replies)[3]) != std::to_string(i + 1)) {
          wrong.fetch_add(1);
        }
      }
      (void)connection.Command({"DEL", key});
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(RedisPipelinedConnectionTest, ErrorRepliesAreRepliesAndTheConnectionStaysUp) {
  RedisPipelinedConnection connection(AdminOptions(TestRedisPort()));
  StatusOr<RedisReplyPtr> reply = connection.Command({"NOSUCHCOMMAND"});
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ((*reply)->type, REDIS_REPLY_ERROR);
  StatusOr<RedisReplyPtr> echo = connection.Command({"ECHO", "still here"});
  ASSERT_TRUE(echo.ok());
  EXPECT_EQ(ReplyText(*echo), "still here");
  EXPECT_EQ(connection.connects(), 1u);
}

TEST(RedisPipelinedConnectionTest, NothingListeningIsUnavailableAtOnce) {
  const int port = FreePort();
  RedisPipelinedConnection connection(Options(port));
  EXPECT_FALSE(connection.connected());
  const auto start = std::chrono::steady_clock::now();
  StatusOr<RedisReplyPtr> reply = connection.Command({"PING"});
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
}

TEST(RedisPipelinedConnectionTest, NoReplyWithinTheTimeoutFailsEveryWaiterAndReconnects) {
  SilentPeer peer;
  RedisPipelineOptions options = PeerOptions(peer.port());
  options.endpoint.command_timeout = 200ms;
  RedisPipelinedConnection connection(options);
  ASSERT_TRUE(connection.connected());
  std::vector<std::thread> threads;
  std::atomic<int> unavailable{0};
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      if (connection.Command({"PING"}).status().code() == StatusCode::kUnavailable) {
        unavailable.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(unavailable.load(), 6);
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 1000ms);
  // The reader closed the silent connection and opened a new one.
  EXPECT_TRUE(Eventually([&] { return connection.connects() >= 2; }, 2000ms));
  EXPECT_EQ(connection.pending(), 0u);
}

TEST(RedisPipelinedConnectionTest, BeyondMaxPendingCommandsFailFastWithResourceExhausted) {
  SilentPeer peer;
  RedisPipelineOptions options = PeerOptions(peer.port());
  options.endpoint.command_timeout = 1500ms;
  options.max_pending = 4;
  RedisPipelinedConnection connection(options);
  ASSERT_TRUE(connection.connected());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] { (void)connection.Command({"PING"}); });
  }
  ASSERT_TRUE(Eventually([&] { return connection.pending() == 4; }, 1000ms));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(connection.Command({"PING"}).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(connection.Commands({{"PING"}, {"PING"}}).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
  for (std::thread& t : threads) t.join();
}

TEST(RedisPipelinedConnectionTest, RedisStoppedMidFlightFailsWaitersThenRecoversAfterRestart) {
  RedisInstance redis("pipelined-redis");
  RedisPipelinedConnection connection(AdminOptions(redis.port()));
  ASSERT_TRUE(connection.connected());
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> unavailable{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      int i = 0;
      while (!stop.load()) {
        const std::string text = std::to_string(t) + "/" + std::to_string(i++);
        StatusOr<RedisReplyPtr> reply = connection.Command({"ECHO", text});
        if (reply.ok() && ReplyText(*reply) == text) {
          ok.fetch_add(1);
        } else if (!reply.ok() && reply.status().code() == StatusCode::kUnavailable) {
          unavailable.fetch_add(1);
          std::this_thread::sleep_for(5ms);
        } else {
          other.fetch_add(1);  // a wrong reply, or an unexpected status
        }
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return ok.load() > 1000; }, 5000ms));
  redis.Stop();
  const int ok_before = ok.load();
  ASSERT_TRUE(Eventually([&] { return unavailable.load() > 50; }, 5000ms));
  EXPECT_FALSE(connection.connected());
  EXPECT_LE(ok.load() - ok_before, 16) << "commands succeeded with Redis stopped";
  redis.Start();
  const int ok_down = ok.load();
  EXPECT_TRUE(Eventually([&] { return ok.load() > ok_down + 1000; }, 10000ms))
      << "commands did not succeed again after Redis restarted";
  stop.store(true);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GE(connection.connects(), 2u);
}

// Runs body(i) for i in [0, fibers) on as many fibers of one new thread,
// sharing that thread's RedisFiberConnection of `options`.
template <typename Body>
void RunOnFibers(int fibers, const RedisPipelineOptions& options, Body body) {
  std::thread thread([&] {
    runtime::FiberScheduler scheduler;
    RedisFiberConnection connection(options);
    for (int i = 0; i < fibers; ++i) scheduler.Spawn([&, i] { body(connection, i); });
    scheduler.Run();
  });
  thread.join();
}

TEST(RedisFiberConnectionTest, EveryFiberGetsItsOwnReplyAndFibersShareSends) {
  constexpr int kFibers = 64;
  constexpr int kPerFiber = 300;
  std::atomic<int> wrong{0};
  std::uint64_t sends = 0;
  std::uint64_t connects = 0;
  std::thread thread([&] {
    runtime::FiberScheduler scheduler;
    RedisFiberConnection connection(AdminOptions(TestRedisPort()));
    for (int f = 0; f < kFibers; ++f) {
      scheduler.Spawn([&, f] {
        for (int i = 0; i < kPerFiber; ++i) {
          const std::string text = std::to_string(f) + "/" + std::to_string(i);
          StatusOr<RedisReplyPtr> reply = connection.Command({"ECHO", text});
          if (!reply.ok() || (*reply)->type != REDIS_REPLY_STRING || ReplyText(*reply) != text) {
            wrong.fetch_add(1);
          }
        }
      });
    }
    scheduler.Run();
    sends = connection.sends();
    connects = connection.connects();
  });
  thread.join();
  EXPECT_EQ(wrong.load(), 0);
  // The fibers' commands shared writes: far fewer writes than commands.
  EXPECT_LT(sends, static_cast<std::uint64_t>(kFibers * kPerFiber) / 4);
  EXPECT_EQ(connects, 1u);
}

TEST(RedisFiberConnectionTest, CommandsOfOneFiberStayTogetherAndInOrder) {
  std::atomic<int> wrong{0};
  RunOnFibers(8, AdminOptions(TestRedisPort()), [&](RedisFiberConnection& connection, int) {
    const std::string key = UniqueKey("fiber-batch");
    for (int i = 1; i <= 200; ++i) {
      StatusOr<std::vector<RedisReplyPtr>> replies = connection.Commands(
          {{"SET", key, "0"}, {"INCR", key}, {"INCRBY", key, std::to_string(i)}, {"GET", key}});
      if (!replies.ok() || replies->size() != 4 || (*replies)[1]->integer != 1 ||
          (*replies)[2]->integer != i + 1 || ReplyText((*replies)[3]) != std::to_string(i + 1)) {
        wrong.fetch_add(1);
      }
    }
    (void)connection.Command({"DEL", key});
  });
  EXPECT_EQ(wrong.load(), 0);
}

TEST(RedisFiberConnectionTest, NothingListeningIsUnavailableAtOnce) {
  const int port = FreePort();
  std::atomic<int> unavailable{0};
  const auto start = std::chrono::steady_clock::now();
  RunOnFibers(4, Options(port), [&](RedisFiberConnection& connection, int) {
    if (connection.Command({"PING"}).status().code() == StatusCode::kUnavailable) {
      unavailable.fetch_add(1);
    }
  });
  EXPECT_EQ(unavailable.load(), 4);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 300ms);
}

TEST(RedisFiberConnectionTest, NoReplyWithinTheTimeoutFailsEveryFiberAndALaterCommandReconnects) {
  SilentPeer peer;
  RedisPipelineOptions options = PeerOptions(peer.port());
  options.endpoint.command_timeout = 200ms;
  std::atomic<int> unavailable{0};
  std::atomic<int> other_fiber_ran{0};
  std::uint64_t connects = 0;
  std::chrono::steady_clock::duration took{};
  std::thread thread([&] {
    runtime::FiberScheduler scheduler;
    RedisFiberConnection connection(options);
    const auto start = std::chrono::steady_clock::now();
    for (int f = 0; f < 6; ++f) {
      scheduler.Spawn([&] {
        if (connection.Command({"PING"}).status().code() == StatusCode::kUnavailable) {
          unavailable.fetch_add(1);
        }
      });
    }
    // The thread is not blocked meanwhile: another fiber keeps running.
    scheduler.Spawn([&] {
      for (int i = 0; i < 10; ++i) {
        runtime::SleepUntil(runtime::IoClock::now() + 10ms);
        other_fiber_ran.fetch_add(1);
      }
    });
    scheduler.Run();
    took = std::chrono::steady_clock::now() - start;
    scheduler.Spawn([&] {
      runtime::SleepUntil(runtime::IoClock::now() + options.reconnect_interval);
      (void)connection.Command({"PING"});  // connects again (and times out again)
    });
    scheduler.Run();
    connects = connection.connects();
  });
  thread.join();
  EXPECT_EQ(unavailable.load(), 6);
  EXPECT_EQ(other_fiber_ran.load(), 10);
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 1000ms);
  EXPECT_EQ(connects, 2u);
}

TEST(RedisFiberConnectionTest, BeyondMaxPendingCommandsFailFastWithResourceExhausted) {
  SilentPeer peer;
  RedisPipelineOptions options = PeerOptions(peer.port());
  options.endpoint.command_timeout = 500ms;
  options.max_pending = 4;
  std::atomic<int> exhausted{0};
  std::atomic<int> unavailable{0};
  RunOnFibers(6, options, [&](RedisFiberConnection& connection, int) {
    const StatusCode code = connection.Command({"PING"}).status().code();
    if (code == StatusCode::kResourceExhausted) exhausted.fetch_add(1);
    if (code == StatusCode::kUnavailable) unavailable.fetch_add(1);
  });
  EXPECT_EQ(exhausted.load(), 2);
  EXPECT_EQ(unavailable.load(), 4);
}

TEST(RedisFiberConnectionTest, RedisStoppedFailsFibersThenRecoversAfterRestart) {
  RedisInstance redis("fiber-redis");
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> unavailable{0};
  std::atomic<int> other{0};
  std::thread fibers([&] {
    runtime::FiberScheduler scheduler;
    RedisFiberConnection connection(AdminOptions(redis.port()));
    for (int f = 0; f < 8; ++f) {
      scheduler.Spawn([&, f] {
        int i = 0;
        while (!stop.load()) {
          const std::string text = std::to_string(f) + "/" + std::to_string(i++);
          StatusOr<RedisReplyPtr> reply = connection.Command({"ECHO", text});
          if (reply.ok() && ReplyText(*reply) == text) {
            ok.fetch_add(1);
          } else if (!reply.ok() && reply.status().code() == StatusCode::kUnavailable) {
            unavailable.fetch_add(1);
            runtime::SleepUntil(runtime::IoClock::now() + 5ms);
          } else {
            other.fetch_add(1);
          }
        }
      });
    }
    scheduler.Run();
  });
  ASSERT_TRUE(Eventually([&] { return ok.load() > 1000; }, 5000ms));
  redis.Stop();
  const int ok_before = ok.load();
  ASSERT_TRUE(Eventually([&] { return unavailable.load() > 50; }, 5000ms));
  EXPECT_LE(ok.load() - ok_before, 16) << "commands succeeded with Redis stopped";
  redis.Start();
  const int ok_down = ok.load();
  EXPECT_TRUE(Eventually([&] { return ok.load() > ok_down + 1000; }, 10000ms))
      << "commands did not succeed again after Redis restarted";
  stop.store(true);
  fibers.join();
  EXPECT_EQ(other.load(), 0);
}

TEST(RedisFiberConnectionTest, OffAFiberItRefusesToWait) {
  RedisFiberConnection connection(Options(TestRedisPort()));
  EXPECT_EQ(connection.Command({"PING"}).status().code(), StatusCode::kInternal);
}

// RedisUserCache's protocol is the same over pooled and pipelined connections
// (the parameter: pipelined connections, 0 for the pool).
class RedisUserCacheTest : public ::testing::TestWithParam<int> {
 protected:
  std::unique_ptr<RedisCommandPipe> Pipe(int port) const {
    if (GetParam() == 0) {
      return std::make_unique<RedisPooledPipe>(
          RedisOptions{.endpoint = Endpoint(port), .pool_size = 4});
    }
    return std::make_unique<RedisPipelinedGroup>(Options(port), GetParam());
  }
  static User MakeUser(std::int64_t id, std::int64_t version, const std::string& name) {
    return User{.id = id,
                .username = name,
                .email = name + "@example.com",
                .full_name = "Name " + name,
                .version = version,
                .created_at_ms = 1000,
                .updated_at_ms = 1000 + version};
  }
};

TEST_P(RedisUserCacheTest, FillsAreVersionedAndTombstonesRefuseOlderFills) {
  const std::unique_ptr<RedisCommandPipe> pipe = Pipe(TestRedisPort());
  RedisUserCache cache(RedisCacheOptions{}, *pipe);
  const std::int64_t id = UniqueId();
  StatusOr<CacheEntry> miss = cache.Get(id);
  ASSERT_TRUE(miss.ok());
  EXPECT_EQ(miss->kind, CacheEntry::Kind::kMiss);

  ASSERT_TRUE(*cache.PutIfNewer(MakeUser(id, 2, "two")));
  EXPECT_FALSE(*cache.PutIfNewer(MakeUser(id, 1, "one"))) << "an older fill was accepted";
  EXPECT_FALSE(*cache.PutIfNewer(MakeUser(id, 2, "again")));
  StatusOr<CacheEntry> hit = cache.Get(id);
  ASSERT_EQ(hit->kind, CacheEntry::Kind::kUser);
  EXPECT_EQ(hit->user.version, 2);
  EXPECT_EQ(hit->user.username, "two");

  ASSERT_TRUE(cache.PutTombstone(id, 3).ok());
  EXPECT_FALSE(*cache.PutIfNewer(MakeUser(id, 3, "stale"))) << "a fill beat a newer tombstone";
  EXPECT_EQ(cache.Get(id)->kind, CacheEntry::Kind::kAbsent);
  EXPECT_EQ(RedisGet(TestRedisPort(), RedisUserCache::Key(id)), "D|3|");

  const std::int64_t absent = UniqueId();
  EXPECT_TRUE(*cache.PutAbsent(absent));
  EXPECT_FALSE(*cache.PutAbsent(absent));
  EXPECT_EQ(cache.Get(absent)->kind, CacheEntry::Kind::kAbsent);
  EXPECT_TRUE(*cache.PutIfNewer(MakeUser(absent, 1, "created"))) << "N blocked a real row";
  EXPECT_TRUE(cache.Ping().ok());
}

TEST_P(RedisUserCacheTest, BatchesFillAndReadManyKeysInOneCall) {
  const std::unique_ptr<RedisCommandPipe> pipe = Pipe(TestRedisPort());
  RedisUserCache cache(RedisCacheOptions{}, *pipe);
  std::vector<User> users;
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 50; ++i) {
    users.push_back(MakeUser(UniqueId(), 5, "batch" + std::to_string(i)));
    ids.push_back(users.back().id);
  }
  ASSERT_TRUE(*cache.PutIfNewer(MakeUser(ids[7], 9, "newer")));
  StatusOr<std::size_t> refused = cache.PutManyIfNewer(users);
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_EQ(*refused, 1u);
  ids.push_back(UniqueId());  // never filled
  StatusOr<std::vector<CacheEntry>> entries = cache.MultiGet(ids);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), ids.size());
  for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
    ASSERT_EQ((*entries)[i].kind, CacheEntry::Kind::kUser);
    EXPECT_EQ((*entries)[i].user.id, ids[i]);
    EXPECT_EQ((*entries)[i].user.version, i == 7 ? 9 : 5);
  }
  EXPECT_EQ(entries->back().kind, CacheEntry::Kind::kMiss);
}

TEST_P(RedisUserCacheTest, ScriptLostByRedisIsLoadedAgain) {
  RedisInstance redis("cache-noscript-" + std::to_string(GetParam()));
  const std::unique_ptr<RedisCommandPipe> pipe = Pipe(redis.port());
  RedisUserCache cache(RedisCacheOptions{}, *pipe);
  const std::int64_t id = UniqueId();
  ASSERT_TRUE(*cache.PutIfNewer(MakeUser(id, 1, "first")));
  ASSERT_EQ(RedisCli(redis.port(), "SCRIPT FLUSH >/dev/null"), 0);
  StatusOr<bool> single = cache.PutIfNewer(MakeUser(id, 2, "second"));
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  EXPECT_TRUE(*single);
  ASSERT_EQ(RedisCli(redis.port(), "SCRIPT FLUSH >/dev/null"), 0);
  const std::vector<User> batch = {MakeUser(id, 3, "third"), MakeUser(UniqueId(), 1, "other")};
  StatusOr<std::size_t> refused = cache.PutManyIfNewer(batch);
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_EQ(*refused, 0u);
  EXPECT_EQ(cache.Get(id)->user.version, 3);
}

// write_intent.lua against the real Redis (rule 10).
TEST_P(RedisUserCacheTest, WriteIntentsHideTheEntryUntilTheirLastWriterEnds) {
  const std::unique_ptr<RedisCommandPipe> pipe = Pipe(TestRedisPort());
  RedisUserCache cache(RedisCacheOptions{}, *pipe);
  const std::int64_t id = UniqueId();
  ASSERT_TRUE(*cache.PutIfNewer(MakeUser(id, 1, "one")));

  ASSERT_TRUE(cache.BeginWrite(id).ok());
  ASSERT_TRUE(cache.BeginWrite(id).ok());  // two writers in flight
  EXPECT_EQ(cache.Get(id)->kind, CacheEntry::Kind::kWriting);
  EXPECT_EQ((*cache.MultiGet(std::vector<std::int64_t>{id}))[0].kind, CacheEntry::Kind::kWriting);
  EXPECT_FALSE(*cache.PutIfNewer(MakeUser(id, 9, "a fill"))) << "a fill landed on an intent";
  EXPECT_FALSE(*cache.PutAbsent(id));
  const std::optional<std::string> marked = RedisGet(TestRedisPort(), RedisUserCache::Key(id));
  ASSERT_TRUE(marked.has_value());
  EXPECT_TRUE(marked->starts_with("W|2|U|1|")) << *marked;

  // The first writer committed version 2; the second is still in flight.
  ASSERT_TRUE(cache.EndWrite(id, {.user = MakeUser(id, 2, "two")}).ok());
  EXPECT_EQ(cache.Get(id)->kind, CacheEntry::Kind::kWriting);
  // The second failed (changed nothing): the guard, version 2, is the entry.
  ASSERT_TRUE(cache.EndWrite(id, {}).ok());
  StatusOr<CacheEntry> entry = cache.Get(id);
  ASSERT_EQ(entry->kind, CacheEntry::Kind::kUser);
  EXPECT_EQ(entry->user.version, 2);
  EXPECT_EQ(entry->user.full_name, "Name two");

  // A delete: a tombstone of the version deleted wins over that version.
  ASSERT_TRUE(cache.BeginWrite(id).ok());
  ASSERT_TRUE(cache.EndWrite(id, {.deleted_version = 2}).ok());
  EXPECT_EQ(cache.Get(id)->kind, CacheEntry::Kind::kAbsent);
  EXPECT_FALSE(*cache.PutIfNewer(MakeUser(id, 2, "two again")));

  // Without an intent, EndWrite stores only what is newer.
  const std::int64_t other = UniqueId();
  ASSERT_TRUE(cache.EndWrite(other, {.user = MakeUser(other, 3, "three")}).ok());
  ASSERT_TRUE(cache.EndWrite(other, {.user = MakeUser(other, 2, "older")}).ok());
  EXPECT_EQ(cache.Get(other)->user.version, 3);

  // An intent whose writer never ends expires by itself; one that nothing
  // guards leaves a miss behind.
  const std::int64_t fresh = UniqueId();
  ASSERT_TRUE(cache.BeginWrite(fresh).ok());
  ASSERT_TRUE(cache.EndWrite(fresh, {}).ok());
  EXPECT_EQ(cache.Get(fresh)->kind, CacheEntry::Kind::kMiss);
  RedisUserCache short_lived(RedisCacheOptions{.tombstone_ttl = std::chrono::milliseconds(300)},
                             *pipe);
  ASSERT_TRUE(short_lived.BeginWrite(fresh).ok());
  EXPECT_EQ(cache.Get(fresh)->kind, CacheEntry::Kind::kWriting);
  EXPECT_TRUE(
      Eventually([&] { return cache.Get(fresh)->kind == CacheEntry::Kind::kMiss; }, 3000ms));

  // The repair settles every open intent with what the store holds.
  ASSERT_TRUE(cache.BeginWrite(other).ok());
  ASSERT_TRUE(cache.BeginWrite(other).ok());
  ASSERT_TRUE(cache.SettleWrite(other, {.user = MakeUser(other, 4, "four")}).ok());
  EXPECT_EQ(cache.Get(other)->user.version, 4);
}

TEST_P(RedisUserCacheTest, TheServersUserMayRunOnlyTheCacheProtocolOnUserKeys) {
  const std::unique_ptr<RedisCommandPipe> pipe = Pipe(TestRedisPort());
  RedisUserCache cache(RedisCacheOptions{}, *pipe);
  const std::int64_t id = UniqueId();
  ASSERT_TRUE(*cache.PutIfNewer(MakeUser(id, 1, "acl")));
  ASSERT_TRUE(cache.PutTombstone(id, 2).ok());
  ASSERT_TRUE(cache.Ping().ok());
  for (const std::vector<std::string>& refused : std::vector<std::vector<std::string>>{
           {"SET", "other:1", "x"},
           {"GET", "other:1"},
           {"FLUSHALL"},
           {"CONFIG", "SET", "maxmemory", "1"},
           {"KEYS", "*"},
           {"EVAL", "return redis.call('SET', 'other:2', 'x')", "0"}}) {
    StatusOr<RedisReplyPtr> reply = pipe->Command(refused);
    ASSERT_TRUE(reply.ok()) << refused[0] << ": " << reply.status().ToString();
    ASSERT_EQ((*reply)->type, REDIS_REPLY_ERROR) << refused[0];
    EXPECT_TRUE(ReplyText(*reply).starts_with("NOPERM") || ReplyText(*reply).starts_with("ERR"))
        << refused[0] << ": " << ReplyText(*reply);
  }
  EXPECT_FALSE(RedisGet(TestRedisPort(), "other:2").has_value());
}

TEST(RedisLoginTest, WithoutAUserOrWithAWrongPasswordNothingIsServed) {
  RedisEndpoint anonymous = Endpoint(TestRedisPort());
  anonymous.user.clear();
  anonymous.password.clear();
  StatusOr<RedisContextPtr> ctx = ConnectRedis(anonymous);
  ASSERT_TRUE(ctx.ok());  // the connection opens, but the default user is off
  RedisReplyPtr reply(static_cast<redisReply*>(redisCommand(ctx->get(), "GET user:1")));
  ASSERT_NE(reply, nullptr);
  ASSERT_EQ(reply->type, REDIS_REPLY_ERROR);
  EXPECT_TRUE(ReplyText(reply).starts_with("NOAUTH")) << ReplyText(reply);

  RedisEndpoint wrong = Endpoint(TestRedisPort());
  wrong.password = "not-the-password";
  StatusOr<RedisContextPtr> refused = ConnectRedis(wrong);
  ASSERT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("login as 'polycrud' refused"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(refused.status().message().find("not-the-password"), std::string::npos);
}

// Under maxmemory with the noeviction policy a full Redis answers reads but
// refuses new entries: kResourceExhausted (not kUnavailable), and nothing it
// held is dropped.
TEST_P(RedisUserCacheTest, AFullRedisRefusesNewEntriesAndKeepsTheOldOnes) {
  RedisInstance redis("cache-full-" + std::to_string(GetParam()));
  const std::unique_ptr<RedisCommandPipe> pipe = Pipe(redis.port());
  RedisUserCache cache(RedisCacheOptions{}, *pipe);
  const std::int64_t id = UniqueId();
  ASSERT_TRUE(*cache.PutIfNewer(MakeUser(id, 1, "kept")));
  ASSERT_TRUE(cache.PutTombstone(UniqueId(), 3).ok());
  ASSERT_EQ(RedisCli(redis.port(), "CONFIG SET maxmemory 1 >/dev/null"), 0);
  EXPECT_EQ(cache.PutIfNewer(MakeUser(UniqueId(), 1, "new")).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(cache.PutIfNewer(MakeUser(id, 2, "newer")).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(cache.PutTombstone(id, 3).code(), StatusCode::kResourceExhausted);
  StatusOr<CacheEntry> kept = cache.Get(id);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  ASSERT_EQ(kept->kind, CacheEntry::Kind::kUser);
  EXPECT_EQ(kept->user.version, 1);
  ASSERT_EQ(RedisCli(redis.port(), "CONFIG SET maxmemory 0 >/dev/null"), 0);
  EXPECT_TRUE(*cache.PutIfNewer(MakeUser(id, 2, "newer")));
}

TEST_P(RedisUserCacheTest, RedisDownIsUnavailableAndRestartIsUsedAgain) {
  RedisInstance redis("cache-restart-" + std::to_string(GetParam()));
  const std::unique_ptr<RedisCommandPipe> pipe = Pipe(redis.port());
  RedisUserCache cache(RedisCacheOptions{}, *pipe);
  const std::int64_t id = UniqueId();
  ASSERT_TRUE(*cache.PutIfNewer(MakeUser(id, 1, "before")));
  redis.Stop();
  EXPECT_EQ(cache.Get(id).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache.Ping().code(), StatusCode::kUnavailable);
  redis.Start();
  // Every connection is back (commands take the pipelined ones in turn, and
  // each reconnects on its own).
  EXPECT_TRUE(Eventually(
      [&] {
        for (int i = 0; i <= GetParam(); ++i) {
          if (!cache.Ping().ok()) return false;
        }
        return true;
      },
      5000ms));
  // A restarted Redis is empty (pure cache), never stale.
  const StatusOr<CacheEntry> after = cache.Get(id);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->kind, CacheEntry::Kind::kMiss);
  EXPECT_TRUE(*cache.PutIfNewer(MakeUser(id, 2, "after")));
}

// keyspace_hits of the Redis on `port` (INFO stats).
long RedisKeyspaceHits(int port) {
  redisContext* ctx = ConnectRedisAsAdmin(port);
  auto* reply = static_cast<redisReply*>(redisCommand(ctx, "INFO stats"));
  long hits = -1;
  if (reply != nullptr && reply->type == REDIS_REPLY_STRING) {
    const std::string info(reply->str, reply->len);
    const std::size_t at = info.find("keyspace_hits:");
    if (at != std::string::npos) hits = std::stol(info.substr(at + 14));
  }
  if (reply != nullptr) freeReplyObject(reply);
  redisFree(ctx);
  return hits;
}

// polycrud-server end to end: how many cache hits reach Redis with and
// without --near-cache-entries, and read-your-writes through the near cache.
class NearCacheServerTest : public ::testing::TestWithParam<bool> {};

TEST_P(NearCacheServerTest, HitsSkipRedisOnlyWithTheNearCacheAndWritesShowAtOnce) {
  const bool near = GetParam();
  ServerSettings settings;
  if (near) settings.extra_args = {"--near-cache-entries", "1000", "--near-cache-ttl-ms", "60000"};
  ServerProcess server(settings);
  ThriftClient client(server.thrift_port());
  gen::UserDraft draft;
  draft.username = UniqueKey("near").substr(5);
  for (char& c : draft.username) c = (c == ':') ? '_' : c;
  draft.email = draft.username + "@example.com";
  draft.full_name = "Near Cache";
  gen::User created;
  client->createUser(created, kAdminToken, draft);
  gen::User got;
  client->getUser(got, kReaderToken, created.id);  // fills the near cache, if on
  const long hits_before = RedisKeyspaceHits(TestRedisPort());
  for (int i = 0; i < 20; ++i) {
    client->getUser(got, kReaderToken, created.id);
    ASSERT_EQ(got.version, created.version);
  }
  const long redis_hits = RedisKeyspaceHits(TestRedisPort()) - hits_before;
  if (near) {
    EXPECT_EQ(redis_hits, 0) << "near-cache hits went to Redis";
  } else {
    EXPECT_GE(redis_hits, 20) << "hits did not go to Redis with the near cache off";
  }

  gen::UserPatch patch;
  patch.__set_full_name("Changed");
  patch.expected_version = created.version;
  gen::User updated;
  client->updateUser(updated, kAdminToken, created.id, patch);
  client->getUser(got, kReaderToken, created.id);
  EXPECT_EQ(got.version, updated.version);
  EXPECT_EQ(got.full_name, "Changed");
  client->deleteUser(kAdminToken, created.id);
  EXPECT_THROW(client->getUser(got, kReaderToken, created.id), gen::NotFound);
}

INSTANTIATE_TEST_SUITE_P(Server, NearCacheServerTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return std::string(param_info.param ? "NearCacheOn" : "NearCacheOff");
                         });

INSTANTIATE_TEST_SUITE_P(Connections, RedisUserCacheTest, ::testing::Values(0, 1, 2),
                         [](const ::testing::TestParamInfo<int>& param_info) {
                           return param_info.param == 0
                                      ? std::string("Pooled")
                                      : "Pipelined" + std::to_string(param_info.param);
                         });

}  // namespace
}  // namespace polycrud::testing
