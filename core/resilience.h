// Degraded-mode building blocks: a circuit breaker around the cache and a
// non-blocking concurrency limit for reads that bypass it. Both thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "core/ports.h"

namespace polycrud {

// Closed: calls pass. After `failure_threshold` consecutive failures it opens
// for `open_ms`; then one probe call is let through (half-open): its success
// closes the breaker, its failure opens it again.
class CircuitBreaker {
 public:
  enum class State : std::uint8_t { kClosed, kOpen, kHalfOpen };

  CircuitBreaker(const Clock& clock, int failure_threshold, std::int64_t open_ms)
      : clock_(clock), failure_threshold_(failure_threshold), open_ms_(open_ms) {}

  // True if the caller may use the protected dependency now.
  bool Allow();
  void RecordSuccess();
  void RecordFailure();
  State state() const;

 private:
  const Clock& clock_;
  const int failure_threshold_;
  const std::int64_t open_ms_;
  mutable std::mutex mu_;
  State state_ = State::kClosed;
  int failures_ = 0;
  std::int64_t open_until_ms_ = 0;
  bool probe_in_flight_ = false;
};

// At most `limit` holders at once; TryAcquire never waits.
class ConcurrencyLimiter {
 public:
  explicit ConcurrencyLimiter(int limit) : limit_(limit) {}

  bool TryAcquire() {
    int current = in_use_.load(std::memory_order_relaxed);
    while (current < limit_) {
      if (in_use_.compare_exchange_weak(current, current + 1, std::memory_order_acquire)) {
        return true;
      }
    }
    return false;
  }
  void Release() { in_use_.fetch_sub(1, std::memory_order_release); }
  int in_use() const { return in_use_.load(std::memory_order_relaxed); }

 private:
  const int limit_;
  std::atomic<int> in_use_{0};
};

}  // namespace polycrud
