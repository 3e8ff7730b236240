// The invariant of docs/cache-protocol.md, checked under concurrency against the fakes:
// clients create, read, update and delete a few hot ids at random; once the
// writes stop, every cache entry equals its store row (same version) or is
// absent (a tombstone or negative entry for deleted rows); no acknowledged
// write is lost; and no client sees a version older than one it already saw
// (while the cache is healthy) or wrote itself (always).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cache/near/near_user_cache.h"
#include "core/user_service.h"
#include "tests/core/user_service_fixture.h"

namespace polycrud::testing {
namespace {

using Kind = MemoryUserCache::Slot::Kind;

constexpr int kHotIds = 6;
constexpr int kClients = 8;

// What one client did and saw.
struct ClientLog {
  std::map<std::int64_t, std::int64_t> max_version_seen;
  std::set<std::int64_t> seen_gone;  // ids seen existing, then not found
  std::map<std::int64_t, int> acked_updates;
  std::set<std::int64_t> acked_deletes;
  std::vector<std::string> violations;
  int created = 0;
};

struct ClientOptions {
  // Whether every read must be monotonic per client. Without a healthy cache
  // a read may bypass it and see another client's write that is committed
  // but not yet acknowledged (its cache update still in flight), and a later
  // cached read may not show it yet; a client's reads must still never go
  // back behind its own acknowledged writes.
  bool monotonic_reads = true;
};

class Client {
 public:
  Client(UserService& service, const MemoryUserStore& store, int seed, ClientOptions options)
      : service_(service),
        store_(store),
        rng_(static_cast<std::uint32_t>(seed)),
        seed_(seed),
        options_(options) {}

  void Run(int ops) {
    for (int i = 0; i < ops; ++i) Step(i);
  }

  ClientLog& log() { return log_; }

 private:
  // Mostly one of the newest kHotIds ids (creates keep that window mostly
  // alive while deletes thin it out), else any id handed out so far or the
  // next one, which does not exist yet.
  std::int64_t PickId() {
    const std::int64_t last = store_.last_id();
    if (Percent() < 80) {
      return std::max<std::int64_t>(1, last - static_cast<std::int64_t>(rng_() % kHotIds));
    }
    return 1 + static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(last + 1));
  }
  int Percent() { return static_cast<int>(rng_() % 100); }

  void Step(int i) {
    const int op = Percent();
    const std::int64_t id = PickId();
    if (op < 40) {
      Read(id, service_.GetUser(kReaderToken, id));
    } else if (op < 50) {
      std::vector<std::int64_t> ids;
      for (int k = 0; k < 4; ++k) ids.push_back(PickId());
      StatusOr<std::vector<User>> users = service_.BatchGetUsers(kReaderToken, ids);
      if (!users.ok()) return Unexpected("BatchGetUsers", users.status());
      std::set<std::int64_t> returned;
      for (const User& u : *users) {
        returned.insert(u.id);
        Observe(u, /*own_write=*/false);
      }
      for (const std::int64_t asked : ids) {
        if (!returned.contains(asked)) ObserveGone(asked);
      }
    } else if (op < 82) {
      UserPatch patch{.full_name = "c" + std::to_string(seed_) + " op" + std::to_string(i)};
      if (Percent() < 50) {
        auto it = log_.max_version_seen.find(id);
        if (it != log_.max_version_seen.end()) patch.expected_version = it->second;
      }
      if (Percent() < 20) patch.email = "e" + std::to_string(id) + "@example.com";
      StatusOr<User> updated = service_.UpdateUser(kAdminToken, id, patch);
      if (updated.ok()) {
        ++log_.acked_updates[id];
        Observe(*updated, /*own_write=*/true);
      } else if (updated.status().code() != StatusCode::kNotFound &&
                 updated.status().code() != StatusCode::kConflict) {
        Unexpected("UpdateUser", updated.status());
      }
    } else if (op < 85) {
      const Status deleted = service_.DeleteUser(kAdminToken, id);
      if (deleted.ok()) {
        log_.acked_deletes.insert(id);
        log_.seen_gone.insert(id);
      } else if (deleted.code() != StatusCode::kNotFound) {
        Unexpected("DeleteUser", deleted);
      }
    } else if (op < 92) {
      const std::string name = "c" + std::to_string(seed_) + "-" + std::to_string(log_.created);
      StatusOr<User> created = service_.CreateUser(
          kAdminToken, {.username = name, .email = name + "@example.com", .full_name = name});
      if (!created.ok()) return Unexpected("CreateUser", created.status());
      ++log_.created;
      Observe(*created, /*own_write=*/true);
    } else {
      // A read of an id that may not exist yet.
      const std::int64_t future = store_.last_id() + 1;
      Read(future, service_.GetUser(kReaderToken, future));
    }
  }

  void Read(std::int64_t id, const StatusOr<User>& got) {
    if (got.ok()) return Observe(*got, /*own_write=*/false);
    if (got.status().code() == StatusCode::kNotFound) return ObserveGone(id);
    Unexpected("GetUser", got.status());
  }

  void Observe(const User& user, bool own_write) {
    std::int64_t& max_seen = log_.max_version_seen[user.id];
    std::int64_t& max_written = max_version_written_[user.id];
    const std::int64_t floor = options_.monotonic_reads ? max_seen : max_written;
    if (user.version < floor) {
      Violation("id " + std::to_string(user.id) + ": saw version " + std::to_string(user.version) +
                " after version " + std::to_string(floor) +
                (own_write ? " (own write)" : " (read)"));
    }
    const bool gone = options_.monotonic_reads ? log_.seen_gone.contains(user.id)
                                               : log_.acked_deletes.contains(user.id);
    if (gone) Violation("id " + std::to_string(user.id) + " came back after it was gone");
    max_seen = std::max(max_seen, user.version);
    if (own_write) max_written = std::max(max_written, user.version);
  }

  void ObserveGone(std::int64_t id) {
    if (log_.max_version_seen.contains(id)) log_.seen_gone.insert(id);
  }

  void Unexpected(const char* what, const Status& status) {
    Violation(std::string(what) + " failed: " + status.ToString());
  }
  void Violation(std::string what) {
    if (log_.violations.size() < 20) log_.violations.push_back(std::move(what));
  }

  UserService& service_;
  const MemoryUserStore& store_;
  std::mt19937 rng_;
  const int seed_;
  const ClientOptions options_;
  std::map<std::int64_t, std::int64_t> max_version_written_;
  ClientLog log_;
};

class CacheInvariantBase : public UserServiceFixture {
 protected:
  void SetUp() override { StartService(UserServiceOptions{}); }

  // The cache the service is built on; a subclass may put one in front.
  virtual UserCache& ServiceCache() { return cache_; }
  void StartService(UserServiceOptions options) {
    service_.reset();
    service_ =
        std::make_unique<UserService>(store_, ServiceCache(), tokens_, clock_, std::move(options));
  }

  void SeedHotIds() {
    for (int n = 0; n < kHotIds; ++n) Create(1000 + n);
    ASSERT_EQ(store_.last_id(), kHotIds);
  }

  // Runs kClients clients for `ops` operations each, concurrently.
  std::vector<ClientLog> RunClients(int round, int ops, ClientOptions options) {
    std::vector<Client> clients;
    clients.reserve(kClients);
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back(service(), store_, round * 100 + c, options);
    }
    std::vector<std::jthread> threads;
    for (Client& client : clients) threads.emplace_back([&client, ops] { client.Run(ops); });
    for (std::jthread& t : threads) t.join();
    std::vector<ClientLog> logs;
    for (Client& client : clients) logs.push_back(std::move(client.log()));
    return logs;
  }

  // Every id's cache entry against its store row; empty when they agree.
  std::string CacheDisagreements() const {
    std::ostringstream out;
    for (std::int64_t id = 1; id <= store_.last_id() + 1; ++id) {
      const std::optional<User> row = store_.Peek(id);
      const MemoryUserCache::Slot slot = cache_.Peek(id);
      if (row) {
        if (slot.kind == Kind::kEmpty) continue;
        if (slot.kind == Kind::kUser && slot.user == *row) continue;
        out << "id " << id << ": store has version " << row->version << ", cache has kind "
            << static_cast<int>(slot.kind) << " version " << slot.version << "\n";
      } else if (slot.kind == Kind::kUser) {
        out << "id " << id << ": deleted, but the cache holds version " << slot.version << "\n";
      }
    }
    return out.str();
  }

  // Every acknowledged write is in the store: deletes stay deleted, and a
  // surviving row's version is 1 + the number of acknowledged updates.
  void ExpectNoAcknowledgedWriteLost(const std::vector<ClientLog>& logs) {
    std::map<std::int64_t, int> updates;
    std::set<std::int64_t> deletes;
    for (const ClientLog& log : logs) {
      for (const auto& [id, n] : log.acked_updates) updates[id] += n;
      deletes.insert(log.acked_deletes.begin(), log.acked_deletes.end());
    }
    for (std::int64_t id = 1; id <= store_.last_id(); ++id) {
      const std::optional<User> row = store_.Peek(id);
      if (deletes.contains(id)) {
        EXPECT_FALSE(row.has_value()) << "acknowledged delete of " << id << " lost";
      } else if (row) {
        EXPECT_EQ(row->version, 1 + updates[id]) << "acknowledged update of " << id << " lost";
      }
    }
  }

  static void ExpectNoViolations(const std::vector<ClientLog>& logs) {
    for (std::size_t c = 0; c < logs.size(); ++c) {
      for (const std::string& v : logs[c].violations) ADD_FAILURE() << "client " << c << ": " << v;
    }
  }
};

// The rounds of the tests below, run over the plain cache and over a near
// cache in front of it.
class CacheInvariantTest : public CacheInvariantBase {
 protected:
  void HealthyRounds() {
    ASSERT_NO_FATAL_FAILURE(SeedHotIds());
    std::vector<ClientLog> all;
    // Each round starts with a cold cache (as if every entry had expired), so
    // fills race the writes again and again.
    for (int round = 0; round < 10; ++round) {
      cache_.EvictAll();
      std::vector<ClientLog> logs = RunClients(round, 300, ClientOptions{});
      ExpectNoViolations(logs);
      all.insert(all.end(), logs.begin(), logs.end());
      EXPECT_EQ(CacheDisagreements(), "") << "after round " << round;
    }
    ExpectNoAcknowledgedWriteLost(all);
    EXPECT_GT(stats().fills.load(), 0u);
    EXPECT_EQ(stats().errors.load(), 0u);
  }

  // The same with a cache that keeps failing (all calls, or only writes) while
  // the clients run: once it is healthy again and the writes have stopped, the
  // repair thread must bring every entry back in line with the store.
  void FlakyRounds() {
    StartService(UserServiceOptions{.cache_failure_threshold = 3,
                                    .cache_open_ms = 50,
                                    .fallback_read_concurrency = 4 * kClients,
                                    .repair_interval_ms = 1});
    ASSERT_NO_FATAL_FAILURE(SeedHotIds());
    std::jthread chaos([&](const std::stop_token& stop) {
      std::mt19937 rng(12345);
      while (!stop.stop_requested()) {
        const auto mode = rng() % 10;
        cache_.SetUnavailable(mode < 2);
        cache_.SetWritesUnavailable(mode >= 2 && mode < 4);
        clock_.AdvanceMs(20);  // lets the breaker half-open now and then
        std::this_thread::sleep_for(std::chrono::microseconds(500 + rng() % 1500));
      }
    });
    std::vector<ClientLog> all;
    for (int round = 0; round < 5; ++round) {
      std::vector<ClientLog> logs = RunClients(round, 300, ClientOptions{.monotonic_reads = false});
      ExpectNoViolations(logs);
      all.insert(all.end(), logs.begin(), logs.end());
    }
    chaos.request_stop();
    chaos.join();
    cache_.SetUnavailable(false);
    cache_.SetWritesUnavailable(false);
    EXPECT_GT(stats().errors.load(), 0u) << "the outage switches never hit a call";

    std::string disagreements;
    const bool converged = WaitUntil([&] {
      clock_.AdvanceMs(50);
      disagreements = CacheDisagreements();
      return disagreements.empty();
    });
    EXPECT_TRUE(converged) << disagreements;
    ExpectNoAcknowledgedWriteLost(all);
  }
};

TEST_F(CacheInvariantTest, ConcurrentClientsLeaveTheCacheEqualToTheStore) { HealthyRounds(); }

TEST_F(CacheInvariantTest, FlakyCacheConvergesOnceWritesStop) { FlakyRounds(); }

// The same clients through a NearUserCache (few slots, long TTL, so entries
// collide and live across rounds): every guarantee must hold as well, and
// once the writes stop its entries agree with the store too.
class NearCacheInvariantTest : public CacheInvariantTest {
 protected:
  UserCache& ServiceCache() override { return near_; }

  std::string NearDisagreements() {
    std::ostringstream out;
    for (std::int64_t id = 1; id <= store_.last_id() + 1; ++id) {
      const std::optional<User> row = store_.Peek(id);
      const std::optional<CacheEntry> entry = near_.Peek(id);
      if (!entry) continue;
      if (entry->kind == CacheEntry::Kind::kUser && (!row || !(entry->user == *row))) {
        out << "id " << id << ": the near cache holds version " << entry->user.version << "\n";
      } else if (entry->kind == CacheEntry::Kind::kAbsent && row) {
        out << "id " << id << ": the near cache says absent, the store has version " << row->version
            << "\n";
      }
    }
    return out.str();
  }

  NearUserCache near_{cache_, NearCacheOptions{.entries = 16, .ttl = std::chrono::minutes(1)}};
};

TEST_F(NearCacheInvariantTest, ConcurrentClientsThroughTheNearCache) {
  HealthyRounds();
  EXPECT_EQ(NearDisagreements(), "");
  EXPECT_GT(near_.hits(), 0u);
}

TEST_F(NearCacheInvariantTest, FlakyCacheThroughTheNearCacheConverges) {
  FlakyRounds();
  EXPECT_EQ(NearDisagreements(), "");
}

}  // namespace
}  // namespace polycrud::testing
