// UserService: the protocol-agnostic use cases of polycrud. Every adapter
// (Thrift, gRPC, SOAP, REST) calls these and only translates the result.
//
// Each call authenticates, checks the role, validates, then delegates, in
// that order, so an unauthenticated caller learns nothing about its input.
// Reads go through CacheAside (cache_aside.h); writes commit in the store
// first and then hand the new row to CacheAside, whose failed cache updates
// the CacheRepairer (cache_repairer.h) repairs. All methods are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/audit_log.h"
#include "core/cache_aside.h"
#include "core/cache_health.h"
#include "core/cache_repairer.h"
#include "core/event_log.h"
#include "core/metrics.h"
#include "core/ports.h"
#include "core/rate_limiter.h"
#include "core/request.h"
#include "core/resilience.h"
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
  std::int64_t retry_after_ms = kDefaultRetryAfterMs;
  // How often cache entries whose invalidation failed are repaired.
  std::int64_t repair_interval_ms = 100;
  // Other servers read the same cache. Then an update or delete whose write
  // intent cannot be set (the cache unreachable, its breaker open) answers
  // kUnavailable with nothing written: this server's own repair (rule 9)
  // would keep only its own readers off the old entry, while the others
  // went on reading it. Alone on its cache, a server writes anyway.
  bool shared_cache = false;
  // Where a service that owns its cache health reports degraded modes (null:
  // nowhere); must outlive the service.
  EventLog* events = nullptr;
  // Where every admin write attempt is recorded (null: nowhere); must
  // outlive the service.
  AuditLog* audit = nullptr;
  // Runs after every committed create, update and delete (the change-event
  // relay then looks for the new event at once); cheap and thread-safe.
  // Empty: nothing.
  std::function<void()> after_write;
  // Per-token rate limits of every operation but Ping (null: none); shared
  // by the services of a process, must outlive them.
  TokenRateLimiter* rate_limiter = nullptr;
};

class UserService {
 public:
  // Owns the cache's health and repairer: for a process with one runtime
  // (and tests).
  UserService(UserStore& store, UserCache& cache, const TokenVerifier& tokens, const Clock& clock,
              UserServiceOptions options = {});
  // Shares `health` and `repairer` with the process's other UserService
  // objects: polycrud-server makes one per runtime, each over the store and
  // cache that runtime may call (server/services.h). All references must
  // outlive this object.
  UserService(UserStore& store, UserCache& cache, CacheHealth& health, CacheRepairer& repairer,
              const TokenVerifier& tokens, const Clock& clock, UserServiceOptions options = {});
  ~UserService() = default;
  UserService(const UserService&) = delete;
  UserService& operator=(const UserService&) = delete;

  // "<server_name> <server_version>". No auth, no I/O.
  std::string Ping() const;

  StatusOr<User> CreateUser(const Caller& caller, const UserDraft& draft);
  StatusOr<User> GetUser(const Caller& caller, std::int64_t id);
  // Users found, in request order (duplicates repeated); missing ids omitted.
  StatusOr<std::vector<User>> BatchGetUsers(const Caller& caller,
                                            std::span<const std::int64_t> ids);
  StatusOr<User> UpdateUser(const Caller& caller, std::int64_t id, const UserPatch& patch);
  Status DeleteUser(const Caller& caller, std::int64_t id);
  // limit 0 means kDefaultPageLimit. Read straight from the store.
  StatusOr<UserPage> ListUsers(const Caller& caller, std::int64_t after_id, std::int32_t limit);
  // Users whose username or e-mail starts with `prefix` (case-insensitive,
  // wildcards literal), ordered by username; limit 0 means
  // kDefaultSearchLimit. Reader or admin. Read straight from the store
  // (UserStore::SearchByPrefix).
  StatusOr<std::vector<User>> SearchUsers(const Caller& caller, std::string_view prefix,
                                          std::int32_t limit);

  // Whether `caller` may run `operation` now (token and role), without
  // running it or counting it against a rate limit. A face that rejects
  // malformed input before calling the core asks it before answering, so an
  // unauthenticated caller learns nothing about its input.
  Status Admit(const Caller& caller, Operation operation) const;

  // From now on every call but Ping answers kUnavailable; calls already
  // running finish normally.
  void BeginShutdown() { shutting_down_.store(true); }
  bool shutting_down() const { return shutting_down_.load(std::memory_order_relaxed); }
  // The server is about to stop: readiness says so (a load balancer stops
  // sending new calls), while calls are still served as usual.
  void BeginDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  // Readiness of the dependencies (each does one round trip).
  bool StoreReachable();
  bool CacheReachable();

  const CacheStats& cache_stats() const { return health_.stats(); }
  CircuitBreaker::State cache_breaker_state() const { return health_.breaker_state(); }

 private:
  // The writes themselves; the public ones audit each attempt.
  StatusOr<User> Create(const Caller& caller, const UserDraft& draft);
  StatusOr<User> Update(const Caller& caller, std::int64_t id, const UserPatch& patch);
  Status Delete(const Caller& caller, std::int64_t id);
  // Records one admin write attempt in options_.audit, if any.
  void Audit(const Caller& caller, Operation operation, std::int64_t user_id,
             const Status& result) const;
  // What every use case checks first: Admit, then the token's rate limit
  // (which this counts).
  Status Enter(const Caller& caller, Operation operation) const;
  Status Authorize(std::string_view token, Role needed) const;
  Status Unavailable(std::string message) const;
  // The write intent of an update or delete of `id` (rule 10); with a
  // shared cache, kUnavailable when it cannot be set.
  Status MarkBeforeWrite(std::int64_t id, std::string_view request_id);

  UserStore& store_;
  UserCache& cache_;
  const TokenVerifier& tokens_;
  const Clock& clock_;
  const UserServiceOptions options_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> draining_{false};

  std::unique_ptr<CacheHealth> own_health_;      // null when shared
  std::unique_ptr<CacheRepairer> own_repairer_;  // null when shared
  CacheHealth& health_;
  CacheRepairer& repairer_;
  CacheAside cache_aside_;
};

}  // namespace polycrud
