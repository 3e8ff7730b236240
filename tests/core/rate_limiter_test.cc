// Per-token rate limits: the token bucket itself, and UserService refusing a
// token past its limit with RESOURCE_EXHAUSTED and the wait as retry hint.
#include "core/rate_limiter.h"

#include <gtest/gtest.h>

#include "core/testing/fake_clock.h"
#include "tests/core/user_service_fixture.h"

namespace polycrud::testing {
namespace {

TEST(TokenRateLimiterTest, ABurstThenOneRequestPerRefill) {
  FakeClock clock;
  TokenRateLimiter limiter(2, 3, clock);  // 2 a second, bursts of 3
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Take("a"), 0) << i;
  EXPECT_EQ(limiter.Take("a"), 500);
  EXPECT_EQ(limiter.Take("a"), 500) << "a refused request must not count";
  clock.AdvanceMs(250);
  EXPECT_EQ(limiter.Take("a"), 250);
  clock.AdvanceMs(250);
  EXPECT_EQ(limiter.Take("a"), 0);
  EXPECT_EQ(limiter.Take("a"), 500);
  EXPECT_EQ(limiter.Take("b"), 0) << "each token has its own bucket";
  clock.AdvanceMs(60'000);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Take("a"), 0) << "refills up to the burst only";
  EXPECT_GT(limiter.Take("a"), 0);
}

class RateLimitedServiceTest : public UserServiceFixture {
 protected:
  void SetUp() override { Restart(UserServiceOptions{.rate_limiter = &limiter_}); }
  TokenRateLimiter limiter_{1, 2, clock_};
};

TEST_F(RateLimitedServiceTest, ATokenPastItsLimitIsRefusedWithTheWaitAsRetryHint) {
  const User user = Create(1);  // the admin token's first request
  ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());
  ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());
  const Status refused = service().GetUser(kReaderToken, user.id).status();
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.retry_after_ms(), 1000);
  EXPECT_NE(refused.message().find("rate limit"), std::string::npos) << refused.message();
  EXPECT_EQ(refused.message().find(kReaderToken), std::string::npos) << "the token leaked";
  EXPECT_FALSE(service().Ping().empty()) << "Ping is never limited";
  // The admin token has its own bucket (one request left), and writes count.
  EXPECT_TRUE(service().UpdateUser(kAdminToken, user.id, {.full_name = "B"}).ok());
  EXPECT_EQ(service().DeleteUser(kAdminToken, user.id).code(), StatusCode::kResourceExhausted);
  clock_.AdvanceMs(1000);
  EXPECT_TRUE(service().GetUser(kReaderToken, user.id).ok());
  // A refused caller is refused before the limit is asked: no bucket for it.
  EXPECT_EQ(service().GetUser("unknown-token", user.id).status().code(),
            StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace polycrud::testing
