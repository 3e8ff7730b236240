#include "core/cache_repairer.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace polycrud {

CacheRepairer::CacheRepairer(UserStore& store, UserCache& cache, CacheHealth& health,
                             CacheRepairerOptions options)
    : store_(store), cache_(cache), health_(health), options_(options) {
  if (options_.interval_ms > 0) thread_ = std::thread([this] { RepairLoop(); });
}

CacheRepairer::~CacheRepairer() {
  {
    std::lock_guard lock(loop_mu_);
    stop_ = true;
  }
  loop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CacheRepairer::MarkPending(std::int64_t id, std::int64_t deleted_version) {
  std::lock_guard lock(pending_mu_);
  if (pending_.size() >= options_.max_pending && !pending_.contains(id)) {
    CacheHealth::Count(health_.stats().repairs_dropped);
    health_.Report(Event::kRepairDropped, {},
                   "too many cache entries wait for repair: user " + std::to_string(id) +
                       "'s heals by its TTL only");
    return;
  }
  PendingRepair& repair = pending_[id];
  repair.deleted_version = std::max(repair.deleted_version, deleted_version);
  repair.generation = ++generation_;
  pending_count_.store(pending_.size(), std::memory_order_release);
}

bool CacheRepairer::IsPending(std::int64_t id) {
  if (pending_count_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard lock(pending_mu_);
  return pending_.contains(id);
}

void CacheRepairer::RepairLoop() {
  std::unique_lock lock(loop_mu_);
  while (!stop_) {
    loop_cv_.wait_for(lock, std::chrono::milliseconds(options_.interval_ms));
    if (stop_) break;
    if (pending() == 0) continue;
    lock.unlock();
    RepairPending();
    lock.lock();
  }
}

void CacheRepairer::RepairPending() {
  const std::size_t repaired = RepairBatch();
  if (repaired > 0) {
    health_.Report(Event::kRepaired, {},
                   "repaired " + std::to_string(repaired) + " cache entries from the store; " +
                       std::to_string(pending()) + " still pending");
  }
}

std::size_t CacheRepairer::Drain(const Clock& clock, std::int64_t budget_ms,
                                 std::int64_t pause_ms) {
  const std::int64_t deadline = clock.MonotonicMs() + budget_ms;
  while (pending() > 0) {
    const std::size_t before = pending();
    RepairPending();
    if (pending() == 0 || clock.MonotonicMs() >= deadline) break;
    if (pending() >= before) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  }
  return pending();
}

std::size_t CacheRepairer::RepairBatch() {
  std::size_t repaired = 0;
  std::vector<std::pair<std::int64_t, PendingRepair>> batch;
  {
    std::lock_guard lock(pending_mu_);
    for (const auto& entry : pending_) {
      batch.push_back(entry);
      if (batch.size() == options_.batch) break;
    }
  }
  for (const auto& [id, repair] : batch) {
    // Writing the row's current version (rather than deleting the key) makes
    // any stale fill still in flight lose against it.
    StatusOr<std::optional<User>> row = store_.FindById(id);
    if (!row.ok()) return repaired;  // the store is down: try again next round
    if (!health_.Allow()) return repaired;
    // Settling also ends the write intents left open by writes whose
    // outcome was unknown (rule 10).
    WrittenEntry written;
    if (row->has_value()) {
      written.user = **row;
    } else {
      written.deleted_version = repair.deleted_version > 0
                                    ? repair.deleted_version
                                    : std::numeric_limits<std::int64_t>::max() - 1;
    }
    if (!health_.Record(cache_.SettleWrite(id, written))) return repaired;
    CacheHealth::Count(health_.stats().repairs);
    ++repaired;
    std::lock_guard lock(pending_mu_);
    // A write that failed again meanwhile bumped the generation: keep it.
    auto it = pending_.find(id);
    if (it != pending_.end() && it->second.generation == repair.generation) pending_.erase(it);
    pending_count_.store(pending_.size(), std::memory_order_release);
  }
  return repaired;
}

}  // namespace polycrud
