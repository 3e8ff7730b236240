// OutboxRelay over the in-memory outbox and a recording publisher: order,
// at-least-once with stable event ids, the lease (one relay publishes), the
// fence, pruning, and the thread that a write nudges.
#include "core/outbox_relay.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/testing/fake_clock.h"
#include "core/testing/memory_outbox.h"
#include "core/testing/recording_event_log.h"

namespace polycrud {
namespace {

using testing::FakeClock;
using testing::MemoryOutbox;
using testing::PublishLog;
using testing::RecordingEventLog;
using testing::RecordingPublisher;

class OutboxRelayTest : public ::testing::Test {
 protected:
  OutboxRelayOptions Options() const {
    OutboxRelayOptions options;
    options.batch = 4;
    options.lease_ms = 10'000;
    options.max_publish_ms = 3'000;
    return options;
  }
  std::vector<std::string> PublishedIds() const {
    std::vector<std::string> ids;
    for (const auto& entry : log_.entries()) ids.push_back(entry.event.event_id);
    return ids;
  }

  FakeClock clock_;
  MemoryOutbox outbox_{clock_};
  PublishLog log_;
  RecordingEventLog events_;
};

TEST_F(OutboxRelayTest, PublishesUnsentEventsInSeqOrderAndMarksThemSent) {
  for (int i = 1; i <= 6; ++i) outbox_.Add(i % 2 + 1, i);
  MemoryOutbox::View view(outbox_, "a");
  RecordingPublisher publisher(log_, "a");
  OutboxRelay relay(view, publisher, clock_, Options(), &events_);

  StatusOr<std::size_t> first = relay.RunOnce();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, 4u);  // one batch
  StatusOr<std::size_t> second = relay.RunOnce();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, 2u);
  EXPECT_EQ(*relay.RunOnce(), 0u);
  EXPECT_EQ(PublishedIds(), (std::vector<std::string>{"event-1", "event-2", "event-3", "event-4",
                                                      "event-5", "event-6"}));
  EXPECT_EQ(outbox_.unsent(), 0u);
  EXPECT_TRUE(relay.active());
  EXPECT_EQ(relay.published(), 6u);
  EXPECT_EQ(events_.Of(Event::kRelayActive).size(), 1u);
}

TEST_F(OutboxRelayTest, ABatchCutMidwayIsPublishedAgainWithTheSameEventIds) {
  for (int i = 1; i <= 4; ++i) outbox_.Add(7, i);
  MemoryOutbox::View view(outbox_, "a");
  RecordingPublisher publisher(log_, "a");
  OutboxRelay relay(view, publisher, clock_, Options());
  publisher.FailNext(1);

  EXPECT_FALSE(relay.RunOnce().ok());
  EXPECT_EQ(outbox_.unsent(), 4u);  // nothing marked: the broker did not confirm
  EXPECT_FALSE(publisher.connected());
  ASSERT_TRUE(relay.RunOnce().ok());
  EXPECT_EQ(outbox_.unsent(), 0u);
  // At least once: the first two twice, each time with its own stable id.
  EXPECT_EQ(PublishedIds(), (std::vector<std::string>{"event-1", "event-2", "event-1", "event-2",
                                                      "event-3", "event-4"}));
  // Per user the versions seen, deduplicated by event id, keep their order.
  std::set<std::string> seen;
  std::int64_t last_version = 0;
  for (const auto& entry : log_.entries()) {
    if (!seen.insert(entry.event.event_id).second) continue;
    EXPECT_GT(entry.event.version, last_version);
    last_version = entry.event.version;
  }
}

TEST_F(OutboxRelayTest, AFailedMarkMeansTheBatchIsPublishedAgain) {
  outbox_.Add(1, 1);
  MemoryOutbox::View view(outbox_, "a");
  RecordingPublisher publisher(log_, "a");
  OutboxRelay relay(view, publisher, clock_, Options());
  outbox_.FailNextMarks(1);
  EXPECT_FALSE(relay.RunOnce().ok());
  ASSERT_TRUE(relay.RunOnce().ok());
  EXPECT_EQ(PublishedIds(), (std::vector<std::string>{"event-1", "event-1"}));
  EXPECT_EQ(outbox_.unsent(), 0u);
}

TEST_F(OutboxRelayTest, OnlyTheRelayHoldingTheLeasePublishesAndAnotherTakesOverWhenItExpires) {
  for (int i = 1; i <= 3; ++i) outbox_.Add(i, 1);
  MemoryOutbox::View view_a(outbox_, "a");
  MemoryOutbox::View view_b(outbox_, "b");
  RecordingPublisher publisher_a(log_, "a");
  RecordingPublisher publisher_b(log_, "b");
  OutboxRelay a(view_a, publisher_a, clock_, Options());
  OutboxRelay b(view_b, publisher_b, clock_, Options());

  EXPECT_EQ(*a.RunOnce(), 3u);
  outbox_.Add(4, 1);
  EXPECT_EQ(*b.RunOnce(), 0u);  // a holds the lease
  EXPECT_FALSE(b.active());
  EXPECT_EQ(publisher_b.connects(), 0);

  // a stops renewing (stalled or dead): once its lease expired, b takes over.
  clock_.AdvanceMs(10'001);
  EXPECT_EQ(*b.RunOnce(), 1u);
  EXPECT_TRUE(b.active());
  for (const auto& entry : log_.entries()) {
    EXPECT_EQ(entry.publisher, entry.event.user_id <= 3 ? "a" : "b");
  }
}

TEST_F(OutboxRelayTest, TheLeaseIsRenewedOnlyOnceLessThanAPublishAndHalfTheRestIsLeft) {
  MemoryOutbox::View view(outbox_, "a");
  RecordingPublisher publisher(log_, "a");
  OutboxRelay relay(view, publisher, clock_, Options());  // lease 10 s, publish 3 s
  for (int i = 0; i < 5; ++i) {
    outbox_.Add(1, i + 1);
    ASSERT_EQ(*relay.RunOnce(), 1u);
  }
  EXPECT_EQ(outbox_.lease_calls(), 2);  // taken, and renewed once connected to the broker
  clock_.AdvanceMs(3'400);              // 6.6 s left: more than 3 + 7 / 2
  ASSERT_EQ(*relay.RunOnce(), 0u);
  EXPECT_EQ(outbox_.lease_calls(), 2);
  clock_.AdvanceMs(200);  // 6.4 s left
  ASSERT_EQ(*relay.RunOnce(), 0u);
  EXPECT_EQ(outbox_.lease_calls(), 3);
}

TEST_F(OutboxRelayTest, AStoppedRelayGivesItsLeaseUpAtOnce) {
  outbox_.Add(1, 1);
  MemoryOutbox::View view_a(outbox_, "a");
  MemoryOutbox::View view_b(outbox_, "b");
  RecordingPublisher publisher_a(log_, "a");
  RecordingPublisher publisher_b(log_, "b");
  OutboxRelay b(view_b, publisher_b, clock_, Options());
  {
    OutboxRelay a(view_a, publisher_a, clock_, Options());
    a.Start();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (outbox_.unsent() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(outbox_.unsent(), 0u);
    a.Stop();
  }
  outbox_.Add(2, 1);
  EXPECT_EQ(*b.RunOnce(), 1u);  // no wait for a's lease to expire
}

TEST_F(OutboxRelayTest, NoBatchIsPublishedWithTooLittleLeaseLeft) {
  outbox_.Add(1, 1);
  MemoryOutbox::View view(outbox_, "a");
  RecordingPublisher publisher(log_, "a");
  OutboxRelayOptions options = Options();
  options.max_publish_ms = options.lease_ms;  // no batch ever fits
  OutboxRelay relay(view, publisher, clock_, options);
  EXPECT_FALSE(relay.RunOnce().ok());
  EXPECT_TRUE(log_.entries().empty());
  EXPECT_EQ(outbox_.unsent(), 1u);
}

TEST_F(OutboxRelayTest, AnUnreachableOutboxIsAnErrorAndTheRelayStandsBy) {
  outbox_.Add(1, 1);
  MemoryOutbox::View view(outbox_, "a");
  RecordingPublisher publisher(log_, "a");
  OutboxRelay relay(view, publisher, clock_, Options(), &events_);
  ASSERT_TRUE(relay.RunOnce().ok());
  outbox_.FailNext(1);
  EXPECT_FALSE(relay.RunOnce().ok());
  EXPECT_FALSE(relay.active());
  EXPECT_EQ(events_.Of(Event::kRelayStandby).size(), 1u);
}

TEST_F(OutboxRelayTest, SentEventsArePrunedAfterTheRetentionPeriodOnly) {
  for (int i = 1; i <= 3; ++i) outbox_.Add(i, 1);
  MemoryOutbox::View view(outbox_, "a");
  RecordingPublisher publisher(log_, "a");
  OutboxRelayOptions options = Options();
  options.retention_ms = 60'000;
  options.prune_every_ms = 1'000;
  options.idle_poll_ms = 1;
  OutboxRelay relay(view, publisher, clock_, options);
  relay.Start();
  const auto wait_for = [&](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return done();
  };
  ASSERT_TRUE(wait_for([&] { return outbox_.unsent() == 0; }));
  clock_.AdvanceMs(30'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(outbox_.size(), 3u);  // sent, but within the retention period
  outbox_.Add(4, 1);              // not sent yet when the others expire
  clock_.AdvanceMs(31'000);
  EXPECT_TRUE(wait_for([&] { return outbox_.size() == 1u; }));
  relay.Stop();
  EXPECT_EQ(relay.pruned(), 3u);
}

// Both start at once and race for the lease; the hand-over when a lease
// lapses is the test above (a lapse in the middle of a publish is what the
// fence keeps out, short of a stall inside one publish call).
TEST_F(OutboxRelayTest, TwoRunningRelaysNeverPublishAtTheSameTimeAndLoseNothing) {
  MemoryOutbox::View view_a(outbox_, "a");
  MemoryOutbox::View view_b(outbox_, "b");
  RecordingPublisher publisher_a(log_, "a");
  RecordingPublisher publisher_b(log_, "b");
  OutboxRelayOptions options = Options();
  options.idle_poll_ms = 1;
  options.standby_poll_ms = 1;
  OutboxRelay a(view_a, publisher_a, clock_, options);
  OutboxRelay b(view_b, publisher_b, clock_, options);
  a.Start();
  b.Start();
  for (int i = 1; i <= 200; ++i) {
    outbox_.Add(i % 10 + 1, i);
    a.Nudge();
    b.Nudge();
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (outbox_.unsent() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  a.Stop();
  b.Stop();
  EXPECT_EQ(outbox_.unsent(), 0u);
  EXPECT_FALSE(log_.overlapped());
  std::set<std::string> ids;
  std::set<std::string> publishers;
  for (const auto& entry : log_.entries()) {
    ids.insert(entry.event.event_id);
    publishers.insert(entry.publisher);
  }
  EXPECT_EQ(ids.size(), 200u);
  EXPECT_EQ(publishers.size(), 1u);  // the lease never lapsed: one relay did it all
}

}  // namespace
}  // namespace polycrud
