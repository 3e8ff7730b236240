// ConnectionBudget: how many client connections the faces of one process may
// hold together, so that descriptors never run out for the process's own
// MariaDB and Redis connections (docs/operations.md, "Connections and
// descriptors"). A face takes a slot for each connection it accepts, holds
// it until the connection closes, and closes a new connection at once when
// no slot is left. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

#include "core/resilience.h"

namespace polycrud::runtime {

class ConnectionBudget {
 public:
  explicit ConnectionBudget(int limit) : limiter_(limit), limit_(limit) {}

  // A slot for one connection, or nullopt (counted) when all are taken.
  std::optional<ConcurrencyLimiter::Slot> TryTake() {
    std::optional<ConcurrencyLimiter::Slot> slot = limiter_.TryTake();
    if (!slot) refused_.fetch_add(1, std::memory_order_relaxed);
    return slot;
  }
  // True at most once a second: whether a refusal should be logged now.
  bool TakeWarningTurn() {
    const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now().time_since_epoch())
                                    .count();
    std::int64_t last = last_warning_ms_.load(std::memory_order_relaxed);
    return now_ms - last >= 1000 &&
           last_warning_ms_.compare_exchange_strong(last, now_ms, std::memory_order_relaxed);
  }

  int limit() const { return limit_; }
  int in_use() const { return limiter_.in_use(); }
  std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  ConcurrencyLimiter limiter_;
  const int limit_;
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::int64_t> last_warning_ms_{-1'000'000};
};

}  // namespace polycrud::runtime
