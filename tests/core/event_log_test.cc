// The core's reports of its degraded modes (EventLog), each with the request
// id of the call that met it, the rate limit in front of the server's log,
// and request ids themselves.
#include "core/event_log.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/request.h"
#include "core/testing/recording_event_log.h"
#include "core/user_service.h"
#include "tests/core/user_service_fixture.h"

namespace polycrud::testing {
namespace {

constexpr int kThreshold = 3;

class CoreEventsTest : public UserServiceFixture {
 protected:
  void SetUp() override {
    Restart(UserServiceOptions{.cache_failure_threshold = kThreshold,
                               .cache_open_ms = 1000,
                               .repair_interval_ms = 0,
                               .events = &events_});
  }
  // The service reports here until it is gone: stopped before events_ is.
  void TearDown() override {
    UserServiceFixture::TearDown();
    service_.reset();
  }
  RecordingEventLog events_;
};

TEST_F(CoreEventsTest, ACacheFailureIsReportedWithTheRequestIdOfItsCall) {
  const User user = Create(1);
  cache_.SetUnavailable(true);
  ASSERT_TRUE(service().GetUser(Caller(kReaderToken, "req-a"), user.id).ok());
  const auto failed = events_.Of(Event::kCacheFailed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].request_id, "req-a");
  EXPECT_NE(failed[0].message.find("injected outage"), std::string::npos) << failed[0].message;
  EXPECT_TRUE(events_.Of(Event::kBreakerOpened).empty());
}

TEST_F(CoreEventsTest, TheBreakerOpeningAndClosingAreReportedOnce) {
  const User user = Create(1);
  cache_.SetUnavailable(true);
  for (int i = 0; i < kThreshold + 3; ++i) {
    ASSERT_TRUE(service().GetUser(Caller(kReaderToken, "r" + std::to_string(i)), user.id).ok());
  }
  const auto opened = events_.Of(Event::kBreakerOpened);
  ASSERT_EQ(opened.size(), 1u);
  EXPECT_EQ(opened[0].request_id, "r" + std::to_string(kThreshold - 1));
  EXPECT_EQ(events_.Of(Event::kCacheFailed).size(), static_cast<std::size_t>(kThreshold));

  cache_.SetUnavailable(false);
  clock_.AdvanceMs(1001);
  ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());  // the probe
  ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());
  EXPECT_EQ(events_.Of(Event::kBreakerClosed).size(), 1u);
}

TEST_F(CoreEventsTest, AWriteWhoseCacheUpdateFailedReportsThePendingRepair) {
  const User user = Create(1);
  cache_.SetUnavailable(true);
  ASSERT_TRUE(service()
                  .UpdateUser(Caller(kAdminToken, "write-1"), user.id, UserPatch{.full_name = "N"})
                  .ok());
  const auto pending = events_.Of(Event::kRepairPending);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].request_id, "write-1");
  EXPECT_NE(pending[0].message.find(std::to_string(user.id)), std::string::npos);
}

TEST(RateLimitedEventLogTest, AtMostPerSecondOfAKindThenSaysHowManyWereLeftOut) {
  FakeClock clock;
  RecordingEventLog inner;
  RateLimitedEventLog limited(inner, clock, /*per_second=*/2);
  for (int i = 0; i < 5; ++i) limited.Record(Event::kCacheFailed, "r", "down");
  limited.Record(Event::kOverloaded, "r", "full");  // another kind: its own budget
  EXPECT_EQ(inner.Of(Event::kCacheFailed).size(), 2u);
  EXPECT_EQ(inner.Of(Event::kOverloaded).size(), 1u);
  clock.AdvanceMs(1000);
  limited.Record(Event::kCacheFailed, "r", "down");
  const auto failed = inner.Of(Event::kCacheFailed);
  ASSERT_EQ(failed.size(), 3u);
  EXPECT_EQ(failed[2].message, "down (3 more of this kind not logged)");
  limited.Record(Event::kCacheFailed, "r", "down");
  EXPECT_EQ(inner.Of(Event::kCacheFailed).back().message, "down");
}

TEST(RequestIdTest, NewIdsAreSixteenHexDigitsAndDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 10'000; ++i) {
    const std::string id = NewRequestId();
    ASSERT_EQ(id.size(), 16u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 10'000u);
}

TEST(RequestIdTest, AClientsIdIsKeptOnlyIfUsable) {
  EXPECT_EQ(AcceptRequestId("trace-1_2.3:4/5+6=7"), "trace-1_2.3:4/5+6=7");
  const std::string max(kMaxRequestIdBytes, 'x');
  EXPECT_EQ(AcceptRequestId(max), max);
  for (const std::string& bad :
       {std::string(), std::string(kMaxRequestIdBytes + 1, 'x'), std::string("a b"),
        std::string("a\r\nX-Evil: 1"), std::string("caf\xc3\xa9")}) {
    const std::string got = AcceptRequestId(bad);
    EXPECT_NE(got, bad);
    EXPECT_EQ(got.size(), 16u);
  }
}

}  // namespace
}  // namespace polycrud::testing
