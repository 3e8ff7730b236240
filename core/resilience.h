// Degraded-mode building blocks: a circuit breaker around the cache and a
// non-blocking concurrency limit for reads that bypass it. Both thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>

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
  // True if this success closed the breaker (it was open or half-open).
  bool RecordSuccess();
  // True if this failure opened the breaker.
  bool RecordFailure();
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

  // One place of the limiter, held until destroyed: a bypassing read holds
  // it for exactly as long as it uses the store, on every path out.
  class [[nodiscard]] Slot {
   public:
    // Holds a place `limiter` already gave (TryAcquire returned true).
    explicit Slot(ConcurrencyLimiter& limiter) : limiter_(&limiter) {}
    Slot(Slot&& other) noexcept : limiter_(std::exchange(other.limiter_, nullptr)) {}
    Slot& operator=(Slot&& other) noexcept {
      if (this != &other) {
        if (limiter_ != nullptr) limiter_->Release();
        limiter_ = std::exchange(other.limiter_, nullptr);
      }
      return *this;
    }
    ~Slot() {
      if (limiter_ != nullptr) limiter_->Release();
    }

   private:
    ConcurrencyLimiter* limiter_;
  };
  // A held place, or nothing when all `limit` are taken. Never waits.
  std::optional<Slot> TryTake() {
    if (!TryAcquire()) return std::nullopt;
    return std::optional<Slot>(std::in_place, *this);
  }

 private:
  const int limit_;
  std::atomic<int> in_use_{0};
};

}  // namespace polycrud
