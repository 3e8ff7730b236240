// CacheRepairer: the ids whose cache entry may be stale because the cache
// update after a committed write failed (docs/cache-protocol.md, rules 3 and 9), and the
// background repair that rewrites each from the store: the row's current
// version, or a tombstone once it is gone. Until an id is repaired, reads of
// it must bypass the cache (IsPending). Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/cache_health.h"
#include "core/ports.h"

namespace polycrud {

struct CacheRepairerOptions {
  // How often pending ids are repaired (0: never in the background; tests
  // call RepairPending() themselves).
  std::int64_t interval_ms = 100;
  // Above this many pending ids, new ones are dropped (and counted): their
  // entries then heal by TTL. Bounds memory during a long cache outage.
  std::size_t max_pending = 1'000'000;
  // Ids repaired per round.
  std::size_t batch = 256;
};

class CacheRepairer {
 public:
  // Repairs through `store` and `cache`, which must be usable from a plain
  // thread; all references must outlive this object.
  CacheRepairer(UserStore& store, UserCache& cache, CacheHealth& health,
                CacheRepairerOptions options = {});
  // Stops the background thread.
  ~CacheRepairer();
  CacheRepairer(const CacheRepairer&) = delete;
  CacheRepairer& operator=(const CacheRepairer&) = delete;

  // Remembers that `id`'s entry may be stale; `deleted_version` > 0 if the
  // write deleted the row at that version.
  void MarkPending(std::int64_t id, std::int64_t deleted_version);
  // True while `id` waits for its repair.
  bool IsPending(std::int64_t id);
  std::size_t pending() const { return pending_count_.load(std::memory_order_acquire); }
  // One round: repairs up to a batch of pending ids, stopping at the first
  // store or cache failure (the rest wait for the next round).
  void RepairPending();
  // For shutdown: repairs round after round until nothing is pending or
  // `budget_ms` (read from `clock`) has passed, pausing `pause_ms` after a
  // round that made no progress; returns how many ids are still pending.
  std::size_t Drain(const Clock& clock, std::int64_t budget_ms, std::int64_t pause_ms = 50);

 private:
  struct PendingRepair {
    std::int64_t deleted_version = 0;  // > 0 if the row was deleted
    std::uint64_t generation = 0;      // tells a repair whether a write failed since
  };

  void RepairLoop();
  // One round of RepairPending(); returns how many ids it repaired.
  std::size_t RepairBatch();

  UserStore& store_;
  UserCache& cache_;
  CacheHealth& health_;
  const CacheRepairerOptions options_;

  std::mutex pending_mu_;
  std::unordered_map<std::int64_t, PendingRepair> pending_;  // guarded by pending_mu_
  std::uint64_t generation_ = 0;                             // guarded by pending_mu_
  std::atomic<std::size_t> pending_count_{0};

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stop_ = false;  // guarded by loop_mu_
  std::thread thread_;
};

}  // namespace polycrud
