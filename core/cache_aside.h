// CacheAside: the cache-aside protocol of docs/cache-protocol.md over one
// UserStore and one UserCache. Reads go cache-first; a miss loads the row
// once per id however many callers miss it together (single-flight) and
// fills the cache with a conditional, versioned write. While the cache's
// breaker is open, or while an id waits for its repair, reads bypass the
// cache, within CacheHealth's fallback limit (the excess gets
// kResourceExhausted). After a committed write the entry is replaced (or
// tombstoned); if that fails the id goes to the CacheRepairer. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/cache_health.h"
#include "core/cache_repairer.h"
#include "core/ports.h"
#include "core/resilience.h"
#include "core/single_flight.h"
#include "core/status.h"
#include "core/user.h"

namespace polycrud {

class CacheAside {
 public:
  // All references must outlive this object.
  CacheAside(UserStore& store, UserCache& cache, CacheHealth& health, CacheRepairer& repairer,
             std::int64_t retry_after_ms);

  // The user `id`, or kNotFound; kUnavailable or kResourceExhausted when
  // neither the cache nor the store can answer.
  // `request_id` goes into every event reported for the call.
  StatusOr<User> Read(std::int64_t id, std::string_view request_id = {});
  // The users found, in request order (duplicates repeated), missing ids
  // left out; one cache round trip and at most one store query.
  StatusOr<std::vector<User>> ReadMany(std::span<const std::int64_t> ids,
                                       std::string_view request_id = {});
  // Before an update or delete of `id` goes to the store: marks its key with
  // a write intent (rule 10), so that a crash between the commit and
  // AfterWrite leaves no stale entry. A failure is counted; whether the
  // write goes ahead is the caller's choice (alone on its cache it does:
  // AfterWrite then fails too, or finds no mark, and repairs as rule 8
  // says). Whether the mark was set.
  bool BeforeWrite(std::int64_t id, std::string_view request_id = {});
  // After a write committed: the entry becomes `user`, or (`user` null) a
  // tombstone of `deleted_version`, once no other writer of the id is still
  // in flight; on failure the id is repaired.
  void AfterWrite(std::int64_t id, const User* user, std::int64_t deleted_version,
                  std::string_view request_id = {});
  // After a create committed: fills the new user's entry (it has no write
  // intent of its own: its id was unknown before); on failure it is repaired.
  void AfterCreate(const User& user, std::string_view request_id = {});
  // After the store answered a write of `id` with `error`. UNAVAILABLE and
  // INTERNAL leave its outcome unknown (the connection dropped or timed out
  // around COMMIT, the server died mid-statement; rule 9): it is treated as
  // committed, so the id is bypassed until the repairer rewrote its entry
  // from the store, and its write intent stays until then (or until it
  // expires). Any other code says nothing was written (not found, a version
  // conflict, a duplicate): its write intent ends.
  void AfterWriteError(std::int64_t id, const Status& error, std::string_view request_id = {});

 private:
  using LoadResult = StatusOr<std::optional<User>>;

  // Store read of an id being written (rule 10): no fill, no shared load.
  StatusOr<User> ReadDuringWrite(std::int64_t id);
  // Store read when the cache must not be used, behind the concurrency limit.
  StatusOr<User> ReadBypassingCache(std::int64_t id, std::string_view request_id);
  LoadResult LoadAndFill(std::int64_t id, std::string_view request_id);
  Status Overloaded(std::string_view request_id) const;
  // Runs `update` (a cache call returning Status) for a committed write of
  // `id`; if the breaker is open or the call fails, the id goes to the
  // repairer.
  template <typename Update>
  void UpdateAfterCommit(std::int64_t id, std::int64_t deleted_version, std::string_view request_id,
                         Update update);
  // Hands `id` to the repairer and reports it, saying `why`.
  void MarkPending(std::int64_t id, std::int64_t deleted_version, std::string_view request_id,
                   std::string_view why);

  UserStore& store_;
  UserCache& cache_;
  CacheHealth& health_;
  CacheRepairer& repairer_;
  const std::int64_t retry_after_ms_;
  SingleFlight<std::int64_t, LoadResult> flights_;
};

}  // namespace polycrud
