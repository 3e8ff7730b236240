// UserService: the protocol-agnostic use cases of polycrud. Every adapter
// (Thrift, gRPC, SOAP, REST) calls these and only translates the result.
//
// Order of checks in every call: authentication, role, then validation, so an
// unauthenticated caller learns nothing about its input. Reads go cache-first
// with the versioned protocol of DESIGN.md; writes commit in the store first
// and then replace (or tombstone) the cache entry. All methods are
// thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/ports.h"
#include "core/resilience.h"
#include "core/single_flight.h"
#include "core/status.h"
#include "core/user.h"

namespace polycrud {

struct UserServiceOptions {
  std::string server_name = "polycrud";
  std::string server_version = "0.1.0";
  // Breaker around the cache: consecutive failures before it opens, and how
  // long it stays open before a probe.
  int cache_failure_threshold = 3;
  std::int64_t cache_open_ms = 1000;
  // Reads that bypass the cache (breaker open) may use at most this many
  // store connections at once; the excess gets kResourceExhausted.
  int fallback_read_concurrency = 8;
  // Retry hint sent with kUnavailable / kResourceExhausted.
  std::int64_t retry_after_ms = 1000;
  // How often cache entries whose invalidation failed are repaired.
  std::int64_t repair_interval_ms = 100;
};

// Counters of the cache protocol, readable at any time.
struct CacheStats {
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> negative_hits{0};
  std::atomic<std::uint64_t> misses{0};
  std::atomic<std::uint64_t> fills{0};
  std::atomic<std::uint64_t> refused_stale_fills{0};
  std::atomic<std::uint64_t> coalesced_misses{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> bypassed_reads{0};
  std::atomic<std::uint64_t> overload_rejections{0};
  std::atomic<std::uint64_t> repairs{0};
  std::atomic<std::uint64_t> repairs_dropped{0};  // pending set full: heals by TTL
};

class UserService {
 public:
  UserService(UserStore& store, UserCache& cache, const TokenVerifier& tokens, const Clock& clock,
              UserServiceOptions options = {});
  ~UserService();
  UserService(const UserService&) = delete;
  UserService& operator=(const UserService&) = delete;

  // "<server_name> <server_version>". No auth, no I/O.
  std::string Ping() const;

  StatusOr<User> CreateUser(std::string_view token, const UserDraft& draft);
  StatusOr<User> GetUser(std::string_view token, std::int64_t id);
  // Users found, in request order (duplicates repeated); missing ids omitted.
  StatusOr<std::vector<User>> BatchGetUsers(std::string_view token,
                                            std::span<const std::int64_t> ids);
  StatusOr<User> UpdateUser(std::string_view token, std::int64_t id, const UserPatch& patch);
  Status DeleteUser(std::string_view token, std::int64_t id);
  // limit 0 means kDefaultPageLimit. Read straight from the store.
  StatusOr<UserPage> ListUsers(std::string_view token, std::int64_t after_id, std::int32_t limit);

  // From now on every call but Ping answers kUnavailable; calls already
  // running finish normally.
  void BeginShutdown() { shutting_down_.store(true); }

  // Readiness of the dependencies (each does one round trip).
  bool StoreReachable();
  bool CacheReachable();

  const CacheStats& cache_stats() const { return stats_; }
  CircuitBreaker::State cache_breaker_state() const { return breaker_.state(); }

 private:
  using LoadResult = StatusOr<std::optional<User>>;

  Status Authorize(std::string_view token, Role needed) const;
  // Cache-aside read of one id. Bypasses the cache while its breaker is open
  // or while the id's invalidation is pending.
  StatusOr<User> ReadThroughCache(std::int64_t id);
  // Store read when the cache must not be used, behind the concurrency limit.
  StatusOr<User> ReadBypassingCache(std::int64_t id);
  LoadResult LoadAndFill(std::int64_t id);
  // Replaces the cache entry after a committed write; on failure remembers
  // the id for repair. `deleted_version` > 0 means the row was deleted.
  void AfterWrite(std::int64_t id, const User* user, std::int64_t deleted_version);
  bool CacheUsableFor(std::int64_t id);
  void CacheFailed(const Status& status);
  void MarkPending(std::int64_t id, std::int64_t deleted_version);
  bool IsPending(std::int64_t id);
  void RepairLoop();
  void RepairPending();
  Status Unavailable(std::string message) const;

  UserStore& store_;
  UserCache& cache_;
  const TokenVerifier& tokens_;
  const Clock& clock_;
  const UserServiceOptions options_;

  CircuitBreaker breaker_;
  ConcurrencyLimiter fallback_limit_;
  SingleFlight<std::int64_t, LoadResult> flights_;
  CacheStats stats_;
  std::atomic<bool> shutting_down_{false};

  // Ids whose cache entry may be stale because the write's cache update
  // failed. The generation tells a repair whether another write failed since.
  struct PendingRepair {
    std::int64_t deleted_version = 0;  // > 0 if the row was deleted
    std::uint64_t generation = 0;
  };
  std::mutex pending_mu_;
  std::unordered_map<std::int64_t, PendingRepair> pending_;
  std::uint64_t pending_generation_ = 0;
  std::atomic<std::size_t> pending_count_{0};

  std::mutex repair_mu_;
  std::condition_variable repair_cv_;
  bool stop_repair_ = false;
  std::thread repair_thread_;
};

}  // namespace polycrud
