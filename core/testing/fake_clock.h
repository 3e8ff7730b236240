// FakeClock: the Clock port under a test's control. Both clocks stand still
// until the test moves them, so breakers and timestamps behave the same on
// every run. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/ports.h"

namespace polycrud::testing {

class FakeClock final : public Clock {
 public:
  // 2023-11-14T22:13:20Z: an arbitrary, plausible wall-clock start.
  static constexpr std::int64_t kStartNowMs = 1'700'000'000'000;
  static constexpr std::int64_t kStartMonotonicMs = 5'000'000;

  // Clock:
  std::int64_t NowMs() const override { return now_ms_.load(); }
  std::int64_t MonotonicMs() const override { return monotonic_ms_.load(); }

  // Sets the wall clock only (it may jump backwards, as real ones do).
  void SetNowMs(std::int64_t now_ms) { now_ms_.store(now_ms); }
  // Moves both clocks forward by `ms`.
  void AdvanceMs(std::int64_t ms) {
    now_ms_.fetch_add(ms);
    monotonic_ms_.fetch_add(ms);
  }

 private:
  std::atomic<std::int64_t> now_ms_{kStartNowMs};
  std::atomic<std::int64_t> monotonic_ms_{kStartMonotonicMs};
};

}  // namespace polycrud::testing
