// The degraded-mode building blocks on their own: CircuitBreaker,
// ConcurrencyLimiter and SingleFlight.
#include "core/resilience.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include "core/single_flight.h"
#include "core/testing/fake_clock.h"
#include "tests/core/user_service_fixture.h"

namespace polycrud::testing {
namespace {

using State = CircuitBreaker::State;

class CircuitBreakerTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  CircuitBreaker breaker_{clock_, /*failure_threshold=*/3, /*open_ms=*/500};
};

TEST_F(CircuitBreakerTest, StaysClosedBelowTheThreshold) {
  breaker_.RecordFailure();
  breaker_.RecordFailure();
  EXPECT_EQ(breaker_.state(), State::kClosed);
  EXPECT_TRUE(breaker_.Allow());
}

TEST_F(CircuitBreakerTest, SuccessResetsTheFailureCount) {
  breaker_.RecordFailure();
  breaker_.RecordFailure();
  breaker_.RecordSuccess();
  breaker_.RecordFailure();
  breaker_.RecordFailure();
  EXPECT_EQ(breaker_.state(), State::kClosed);
}

TEST_F(CircuitBreakerTest, OpensAtTheThreshold) {
  for (int i = 0; i < 3; ++i) breaker_.RecordFailure();
  EXPECT_EQ(breaker_.state(), State::kOpen);
  EXPECT_FALSE(breaker_.Allow());
}

TEST_F(CircuitBreakerTest, LetsOneProbeThroughAfterTheOpenInterval) {
  for (int i = 0; i < 3; ++i) breaker_.RecordFailure();
  clock_.AdvanceMs(499);
  EXPECT_FALSE(breaker_.Allow());
  clock_.AdvanceMs(1);
  EXPECT_TRUE(breaker_.Allow());
  EXPECT_EQ(breaker_.state(), State::kHalfOpen);
  EXPECT_FALSE(breaker_.Allow()) << "only one probe at a time";
}

TEST_F(CircuitBreakerTest, SuccessfulProbeCloses) {
  for (int i = 0; i < 3; ++i) breaker_.RecordFailure();
  clock_.AdvanceMs(500);
  ASSERT_TRUE(breaker_.Allow());
  breaker_.RecordSuccess();
  EXPECT_EQ(breaker_.state(), State::kClosed);
  EXPECT_TRUE(breaker_.Allow());
  EXPECT_TRUE(breaker_.Allow());
}

TEST_F(CircuitBreakerTest, FailedProbeReopensForAnotherInterval) {
  for (int i = 0; i < 3; ++i) breaker_.RecordFailure();
  clock_.AdvanceMs(500);
  ASSERT_TRUE(breaker_.Allow());
  breaker_.RecordFailure();
  EXPECT_EQ(breaker_.state(), State::kOpen);
  clock_.AdvanceMs(499);
  EXPECT_FALSE(breaker_.Allow());
  clock_.AdvanceMs(1);
  EXPECT_TRUE(breaker_.Allow());
}

TEST(ConcurrencyLimiterTest, GrantsUpToTheLimitWithoutWaiting) {
  ConcurrencyLimiter limiter(2);
  EXPECT_TRUE(limiter.TryAcquire());
  EXPECT_TRUE(limiter.TryAcquire());
  EXPECT_FALSE(limiter.TryAcquire());
  EXPECT_EQ(limiter.in_use(), 2);
  limiter.Release();
  EXPECT_EQ(limiter.in_use(), 1);
  EXPECT_TRUE(limiter.TryAcquire());
  EXPECT_FALSE(limiter.TryAcquire());
}

TEST(ConcurrencyLimiterTest, NeverExceedsTheLimitUnderContention) {
  ConcurrencyLimiter limiter(3);
  std::atomic<int> holders{0};
  std::atomic<int> max_holders{0};
  std::vector<std::jthread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (!limiter.TryAcquire()) continue;
        const int now = holders.fetch_add(1) + 1;
        int seen = max_holders.load();
        while (now > seen && !max_holders.compare_exchange_weak(seen, now)) {
        }
        holders.fetch_sub(1);
        limiter.Release();
      }
    });
  }
  for (std::jthread& t : threads) t.join();
  EXPECT_LE(max_holders.load(), 3);
  EXPECT_GE(max_holders.load(), 1);
  EXPECT_EQ(limiter.in_use(), 0);
}

TEST(ConcurrencyLimiterTest, SlotHoldsItsPlaceUntilDestroyedOrMoved) {
  ConcurrencyLimiter limiter(1);
  {
    std::optional<ConcurrencyLimiter::Slot> slot = limiter.TryTake();
    ASSERT_TRUE(slot.has_value());
    EXPECT_EQ(limiter.in_use(), 1);
    EXPECT_FALSE(limiter.TryTake().has_value());
    std::optional<ConcurrencyLimiter::Slot> moved = std::move(slot);
    slot.reset();  // a moved-from slot releases nothing
    EXPECT_EQ(limiter.in_use(), 1);
  }
  EXPECT_EQ(limiter.in_use(), 0);
  EXPECT_TRUE(limiter.TryTake().has_value());
  EXPECT_EQ(limiter.in_use(), 0);
}

TEST(SingleFlightTest, SequentialCallsEachRunTheLoad) {
  SingleFlight<int, int> flight;
  int loads = 0;
  bool shared = true;
  EXPECT_EQ(flight.Do(
                1, [&] { return ++loads; }, &shared),
            1);
  EXPECT_FALSE(shared);
  EXPECT_EQ(flight.Do(
                1, [&] { return ++loads; }, &shared),
            2);
  EXPECT_FALSE(shared);
}

TEST(SingleFlightTest, OtherKeysDoNotWaitForAFlight) {
  SingleFlight<int, int> flight;
  Notification started;
  Notification release;
  std::jthread slow([&] {
    EXPECT_EQ(flight.Do(1,
                        [&] {
                          started.Notify();
                          release.Wait();
                          return 10;
                        }),
              10);
  });
  const ScopeExit unblock([&] { release.Notify(); });
  ASSERT_TRUE(started.Wait());
  bool shared = true;
  EXPECT_EQ(flight.Do(
                2, [] { return 20; }, &shared),
            20);
  EXPECT_FALSE(shared);
  release.Notify();
  slow.join();
}

TEST(SingleFlightTest, ConcurrentCallersShareTheLeadersResult) {
  constexpr int kCallers = 6;
  SingleFlight<int, int> flight;
  std::atomic<int> arrived{0};
  std::atomic<int> loads{0};
  std::atomic<int> shared_count{0};
  std::vector<std::jthread> threads;
  for (int t = 0; t < kCallers; ++t) {
    threads.emplace_back([&] {
      arrived.fetch_add(1);
      bool shared = false;
      const int value = flight.Do(
          7,
          [&] {
            loads.fetch_add(1);
            // Hold the flight open until every caller has arrived, plus a
            // moment for the last ones to step from arriving into Do.
            EXPECT_TRUE(WaitUntil([&] { return arrived.load() == kCallers; }));
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            return 42;
          },
          &shared);
      EXPECT_EQ(value, 42);
      if (shared) shared_count.fetch_add(1);
    });
  }
  for (std::jthread& t : threads) t.join();
  EXPECT_EQ(loads.load(), 1);
  EXPECT_EQ(shared_count.load(), kCallers - 1);
}

}  // namespace
}  // namespace polycrud::testing
