// Degraded modes of docs/cache-protocol.md rule 8 and their recovery: the cache failing
// (reads fall back to the store behind a circuit breaker and a concurrency
// limit), writes whose cache update failed (the entry is bypassed until the
// repair thread rewrites it), and the store down (cached reads still served,
// writes refused with nothing half-written).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <span>
#include <thread>
#include <vector>

#include "core/user_service.h"
#include "tests/core/user_service_fixture.h"

namespace polycrud::testing {
namespace {

using Kind = MemoryUserCache::Slot::Kind;
using BreakerState = CircuitBreaker::State;

constexpr int kThreshold = 3;
constexpr std::int64_t kOpenMs = 1000;

UserServiceOptions DegradedOptions() {
  return UserServiceOptions{.cache_failure_threshold = kThreshold,
                            .cache_open_ms = kOpenMs,
                            .fallback_read_concurrency = 8,
                            .retry_after_ms = 750,
                            .repair_interval_ms = 2};
}

// ---------------------------------------------------------------- cache down

class CacheOutageTest : public UserServiceFixture {
 protected:
  void SetUp() override { Restart(DegradedOptions()); }
};

TEST_F(CacheOutageTest, ReadsAreServedFromTheStore) {
  const User user = Create(1);
  cache_.SetUnavailable(true);

  StatusOr<User> got = service().GetUser(kReaderToken, user.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, user);
  EXPECT_EQ(store_.find_by_id_calls(), 1);
  EXPECT_EQ(stats().errors.load(), 1u);
  EXPECT_EQ(stats().bypassed_reads.load(), 1u);

  const std::vector<std::int64_t> ids = {user.id, 999};
  StatusOr<std::vector<User>> batch = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(*batch, std::vector<User>{user});

  EXPECT_EQ(service().GetUser(kReaderToken, 999).status().code(), StatusCode::kNotFound);
}

TEST_F(CacheOutageTest, BreakerOpensAfterThresholdAndReadsSkipTheCache) {
  const User user = Create(1);
  cache_.SetUnavailable(true);
  const int calls_before = cache_.data_calls();

  for (int i = 0; i < kThreshold; ++i) {
    ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());
  }
  EXPECT_EQ(cache_.data_calls(), calls_before + kThreshold);
  EXPECT_EQ(service().cache_breaker_state(), BreakerState::kOpen);

  for (int i = 0; i < 5; ++i) {
    StatusOr<User> got = service().GetUser(kReaderToken, user.id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, user);
  }
  const std::vector<std::int64_t> ids = {user.id};
  ASSERT_TRUE(service().BatchGetUsers(kReaderToken, ids).ok());
  EXPECT_EQ(cache_.data_calls(), calls_before + kThreshold) << "the open breaker let a call by";
  EXPECT_EQ(store_.find_by_id_calls(), kThreshold + 5);
}

TEST_F(CacheOutageTest, BreakerProbesAfterOpenIntervalAndClosesWhenCacheWorks) {
  const User user = Create(1);
  cache_.SetUnavailable(true);
  for (int i = 0; i < kThreshold; ++i) ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());
  ASSERT_EQ(service().cache_breaker_state(), BreakerState::kOpen);
  cache_.SetUnavailable(false);
  const int gets = cache_.get_calls();

  clock_.AdvanceMs(kOpenMs - 1);
  ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());
  EXPECT_EQ(cache_.get_calls(), gets) << "probed before the open interval ended";

  clock_.AdvanceMs(1);
  ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());
  EXPECT_EQ(cache_.get_calls(), gets + 1);
  EXPECT_EQ(service().cache_breaker_state(), BreakerState::kClosed);

  const int finds = store_.find_by_id_calls();
  const std::uint64_t hits = stats().hits.load();
  StatusOr<User> got = service().GetUser(kReaderToken, user.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, user);
  EXPECT_EQ(stats().hits.load(), hits + 1);
  EXPECT_EQ(store_.find_by_id_calls(), finds);
}

TEST_F(CacheOutageTest, FailedProbeReopensTheBreaker) {
  const User user = Create(1);
  cache_.SetUnavailable(true);
  for (int i = 0; i < kThreshold; ++i) ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());
  clock_.AdvanceMs(kOpenMs);
  const int gets = cache_.get_calls();

  ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());  // the probe, which fails
  EXPECT_EQ(cache_.get_calls(), gets + 1);
  EXPECT_EQ(service().cache_breaker_state(), BreakerState::kOpen);
  ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());
  EXPECT_EQ(cache_.get_calls(), gets + 1) << "one failed probe must reopen for a full interval";

  clock_.AdvanceMs(kOpenMs);
  ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());
  EXPECT_EQ(cache_.get_calls(), gets + 2);
}

TEST_F(CacheOutageTest, BatchReadsSkipTheCacheWhileTheBreakerIsOpen) {
  for (int n = 1; n <= 3; ++n) Create(n);
  cache_.SetUnavailable(true);
  for (int i = 0; i < kThreshold; ++i) ASSERT_TRUE(service().GetUser(kReaderToken, 1).ok());
  const int multi_gets = cache_.multi_get_calls();
  const std::vector<std::int64_t> ids = {3, 1, 2};
  StatusOr<std::vector<User>> users = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(users.ok()) << users.status().ToString();
  ASSERT_EQ(users->size(), 3u);
  EXPECT_EQ((*users)[0].id, 3);
  EXPECT_EQ(cache_.multi_get_calls(), multi_gets);
  EXPECT_EQ(store_.find_by_ids_calls(), 1);
}

// ---------------------------------------------------------------- fallback limit

class FallbackLimitTest : public UserServiceFixture {};

TEST_F(FallbackLimitTest, ExcessBypassingReadsAreResourceExhausted) {
  Restart(UserServiceOptions{.cache_failure_threshold = 1,
                             .cache_open_ms = kOpenMs,
                             .fallback_read_concurrency = 2,
                             .retry_after_ms = 321});
  const User user = Create(1);
  cache_.SetUnavailable(true);
  ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());  // opens the breaker
  ASSERT_EQ(service().cache_breaker_state(), BreakerState::kOpen);

  // Two reads take the two fallback slots and hold them inside the store.
  std::atomic<int> inside{0};
  Notification release;
  store_.SetFindByIdHook([&](std::int64_t) {
    inside.fetch_add(1);
    release.Wait();
  });
  std::atomic<int> held_ok{0};
  std::vector<std::jthread> holders;
  for (int i = 0; i < 2; ++i) {
    holders.emplace_back([&] {
      if (service().GetUser(kReaderToken, user.id).ok()) held_ok.fetch_add(1);
    });
  }
  const ScopeExit unblock([&] { release.Notify(); });
  ASSERT_TRUE(WaitUntil([&] { return inside.load() == 2; }));

  StatusOr<User> excess = service().GetUser(kReaderToken, user.id);
  ASSERT_FALSE(excess.ok());
  EXPECT_EQ(excess.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(excess.status().retry_after_ms(), 321);
  const std::vector<std::int64_t> ids = {user.id};
  EXPECT_EQ(service().BatchGetUsers(kReaderToken, ids).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(stats().overload_rejections.load(), 2u);
  EXPECT_EQ(inside.load(), 2) << "a rejected read reached the store";

  release.Notify();
  for (std::jthread& t : holders) t.join();
  EXPECT_EQ(held_ok.load(), 2);

  store_.SetFindByIdHook(nullptr);
  EXPECT_TRUE(service().GetUser(kReaderToken, user.id).ok()) << "the slots were not given back";
  EXPECT_TRUE(service().BatchGetUsers(kReaderToken, ids).ok());
}

// ---------------------------------------------------------- shared cache

// Several servers on one cache: a write that cannot mark its entry first is
// refused before the store, since only this server would know to bypass the
// old entry; alone on its cache, the server writes and repairs.
TEST_F(CacheOutageTest, OnASharedCacheAWriteThatCannotMarkItsEntryIsRefusedUnwritten) {
  UserServiceOptions shared = DegradedOptions();
  shared.shared_cache = true;
  Restart(shared);
  const User user = Create(1);
  cache_.SetUnavailable(true);
  const int updates_before = store_.update_calls();
  StatusOr<User> updated =
      service().UpdateUser(kAdminToken, user.id, UserPatch{.full_name = "New"});
  EXPECT_EQ(updated.status().code(), StatusCode::kUnavailable) << updated.status().ToString();
  EXPECT_GT(updated.status().retry_after_ms(), 0);
  EXPECT_EQ(store_.update_calls(), updates_before) << "the store was written";
  EXPECT_EQ(service().DeleteUser(kAdminToken, user.id).code(), StatusCode::kUnavailable);
  // Reads go on from the store.
  StatusOr<User> read = service().GetUser(kReaderToken, user.id);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->version, 1);
  cache_.SetUnavailable(false);
  clock_.AdvanceMs(kOpenMs);  // the breaker half-opens: the cache is tried again
  updated = service().UpdateUser(kAdminToken, user.id, UserPatch{.full_name = "New"});
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version, 2);
}

TEST_F(CacheOutageTest, AloneOnItsCacheAServerWritesAndRepairsWhenItCannotMark) {
  const User user = Create(1);
  cache_.SetUnavailable(true);
  StatusOr<User> updated =
      service().UpdateUser(kAdminToken, user.id, UserPatch{.full_name = "New"});
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version, 2);
}

// ---------------------------------------------------------------- repair

class CacheRepairTest : public UserServiceFixture {
 protected:
  void SetUp() override { Restart(DegradedOptions()); }

  // Waits until `done` holds, moving the clock past the breaker's open
  // interval on every poll so that a breaker the outage opened lets the
  // repair thread probe again.
  template <typename Predicate>
  bool WaitForRepair(Predicate done) {
    return WaitUntil([&] {
      clock_.AdvanceMs(kOpenMs);
      return done();
    });
  }

  // Waits until a read of `id` is served by the cache again (the id is no
  // longer pending); returns that read.
  StatusOr<User> WaitForCachedRead(std::int64_t id) {
    StatusOr<User> got = Status::Internal("never read");
    const bool served = WaitForRepair([&] {
      const std::uint64_t hits = stats().hits.load();
      got = service().GetUser(kReaderToken, id);
      return stats().hits.load() > hits;
    });
    EXPECT_TRUE(served) << "reads of " << id << " never went back to the cache";
    return got;
  }
};

TEST_F(CacheRepairTest, ReadsBypassTheStaleEntryUntilItIsRepaired) {
  const User user = Create(1);
  cache_.SetWritesUnavailable(true);
  StatusOr<User> updated = service().UpdateUser(kAdminToken, user.id, {.full_name = "Two"});
  ASSERT_TRUE(updated.ok()) << "a cache failure is not the client's problem";
  ASSERT_EQ(updated->version, 2);
  ASSERT_EQ(cache_.Peek(user.id).user, user) << "the fake should still hold version 1";

  // The cache still answers Get with version 1; the service must not use it.
  for (int i = 0; i < 3; ++i) {
    StatusOr<User> got = service().GetUser(kReaderToken, user.id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, *updated) << "served the stale cached version";
  }
  const std::vector<std::int64_t> ids = {user.id};
  StatusOr<std::vector<User>> batch = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(*batch, std::vector<User>{*updated});
  EXPECT_EQ(stats().hits.load(), 0u);

  cache_.SetWritesUnavailable(false);
  EXPECT_TRUE(WaitForRepair([&] { return cache_.Peek(user.id).version == 2; }));
  EXPECT_EQ(cache_.Peek(user.id).user, *updated);
  EXPECT_GE(stats().repairs.load(), 1u);
  StatusOr<User> cached = WaitForCachedRead(user.id);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(*cached, *updated);
}

// Regression (found by the fault suite, server-kill): a server killed
// between an update's COMMIT and its cache update left the old version cached
// for its whole TTL. The write intent it made before the COMMIT outlives it:
// reads of the id go to the store and fills are refused until the intent
// expires, so the restarted server never serves the old version.
TEST_F(CacheRepairTest, AWriterThatDiesAfterItsCommitLeavesNoStaleEntry) {
  const User user = Create(1);
  ASSERT_EQ(service().GetUser(kReaderToken, user.id)->version, 1);  // cached
  // The dying writer: its intent, its commit, and nothing after.
  ASSERT_TRUE(cache_.BeginWrite(user.id).ok());
  StatusOr<User> committed = store_.Update(user.id, {.full_name = "Two"}, 5);
  ASSERT_TRUE(committed.ok());
  Restart(DegradedOptions());  // a new process: nothing pending in memory

  for (int i = 0; i < 3; ++i) {
    StatusOr<User> got = service().GetUser(kReaderToken, user.id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, *committed) << "served the version the dead writer replaced";
  }
  const std::vector<std::int64_t> ids = {user.id};
  EXPECT_EQ(*service().BatchGetUsers(kReaderToken, ids), std::vector<User>{*committed});
  EXPECT_EQ(cache_.Peek(user.id).writers, 1) << "a read filled over the intent";
  EXPECT_GE(stats().intent_misses.load(), 4u);

  // Another writer of the id ends normally: the intent of the dead one keeps
  // the key marked, holding the newest version as its guard.
  StatusOr<User> third = service().UpdateUser(kAdminToken, user.id, {.full_name = "Three"});
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(cache_.Peek(user.id).writers, 1);
  EXPECT_EQ(cache_.Peek(user.id).user, *third);
  EXPECT_EQ(*service().GetUser(kReaderToken, user.id), *third);

  cache_.Evict(user.id);  // the intent's TTL ran out
  EXPECT_EQ(*service().GetUser(kReaderToken, user.id), *third);
  EXPECT_EQ(cache_.Peek(user.id).user, *third) << "the first read after the intent fills";
}

// A write whose outcome is unknown keeps its intent; the repair settles it
// with the row as the store has it, and reads use the cache again.
TEST_F(CacheRepairTest, TheRepairSettlesTheIntentOfAWriteWhoseOutcomeIsUnknown) {
  const User user = Create(1);
  ASSERT_EQ(service().GetUser(kReaderToken, user.id)->version, 1);
  store_.SetLoseWriteAnswers(true);
  ASSERT_EQ(service().UpdateUser(kAdminToken, user.id, {.full_name = "Two"}).status().code(),
            StatusCode::kUnavailable);
  store_.SetLoseWriteAnswers(false);
  EXPECT_TRUE(WaitForRepair([&] { return cache_.Peek(user.id).writers == 0; }));
  EXPECT_EQ(cache_.Peek(user.id).version, 2);
  StatusOr<User> cached = WaitForCachedRead(user.id);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(cached->version, 2);
  EXPECT_GE(cache_.settle_write_calls(), 1);
}

// A full cache (Redis at maxmemory, policy noeviction) answers reads but
// refuses writes. Reads keep using it, the breaker stays closed, misses are
// served from the store, and an entry whose update was refused is bypassed
// until it is repaired once there is room again.
TEST_F(CacheRepairTest, AFullCacheIsNoOutageAndStaleEntriesAreBypassedUntilRepaired) {
  const User user = Create(1);
  const User other = Create(2);
  cache_.Evict(other.id);
  cache_.SetFull(true);
  for (int i = 0; i < 2 * kThreshold; ++i) {
    StatusOr<User> got = service().GetUser(kReaderToken, other.id);  // a miss each time
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, other);
  }
  EXPECT_EQ(service().cache_breaker_state(), BreakerState::kClosed);
  EXPECT_EQ(stats().refusals.load(), static_cast<std::uint64_t>(2 * kThreshold));
  EXPECT_EQ(stats().bypassed_reads.load(), 0u);

  StatusOr<User> updated = service().UpdateUser(kAdminToken, user.id, {.full_name = "Two"});
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  ASSERT_EQ(cache_.Peek(user.id).version, 1) << "the full fake should keep version 1";
  for (int i = 0; i < 3; ++i) {
    StatusOr<User> got = service().GetUser(kReaderToken, user.id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, *updated) << "served the entry the full cache could not update";
  }
  EXPECT_EQ(service().cache_breaker_state(), BreakerState::kClosed);

  cache_.SetFull(false);
  EXPECT_TRUE(WaitForRepair([&] { return cache_.Peek(user.id).version == 2; }));
  StatusOr<User> cached = WaitForCachedRead(user.id);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(*cached, *updated);
}

// Regression: an update or delete whose answer was lost after COMMIT (the
// connection dropped) returned UNAVAILABLE without marking the id for repair,
// so the cache kept the old version for its whole TTL while MariaDB held the
// new one, and every further conditional update of that user failed.
TEST_F(CacheRepairTest, AnUpdateWhoseOutcomeIsUnknownIsTreatedAsCommitted) {
  const User user = Create(1);
  ASSERT_EQ(service().GetUser(kReaderToken, user.id)->version, 1);  // cached at version 1
  store_.SetLoseWriteAnswers(true);
  StatusOr<User> lost = service().UpdateUser(kAdminToken, user.id, {.full_name = "Two"});
  store_.SetLoseWriteAnswers(false);
  ASSERT_EQ(lost.status().code(), StatusCode::kUnavailable);
  ASSERT_EQ(store_.Peek(user.id)->version, 2) << "the fake should have committed";
  ASSERT_EQ(cache_.Peek(user.id).version, 1);

  StatusOr<User> read = service().GetUser(kReaderToken, user.id);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->version, 2) << "served the version the unknown write may have replaced";
  EXPECT_TRUE(WaitForRepair([&] { return cache_.Peek(user.id).version == 2; }));
  StatusOr<User> again =
      service().UpdateUser(kAdminToken, user.id, {.full_name = "Three", .expected_version = 2});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(WaitForCachedRead(user.id)->version, 3);
}

TEST_F(CacheRepairTest, ADeleteWhoseOutcomeIsUnknownLeavesNoUserBehind) {
  const User user = Create(1);
  ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());  // cached
  store_.SetLoseWriteAnswers(true);
  const Status lost = service().DeleteUser(kAdminToken, user.id);
  store_.SetLoseWriteAnswers(false);
  ASSERT_EQ(lost.code(), StatusCode::kUnavailable);
  EXPECT_EQ(service().GetUser(kReaderToken, user.id).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(WaitForRepair([&] { return cache_.Peek(user.id).kind == Kind::kTombstone; }));
  EXPECT_EQ(service().GetUser(kReaderToken, user.id).status().code(), StatusCode::kNotFound);
}

// Regression: BatchGetUsers read the cache first and asked whether an id was
// pending afterwards. A repair finishing in between made the entry read
// before it (the stale version) look current, and a client was served an
// older version than the one its own acknowledged update had returned.
TEST_F(CacheRepairTest, BatchReadRacingTheRepairServesNoStaleEntry) {
  const User user = Create(1);
  cache_.SetWritesUnavailable(true);
  StatusOr<User> updated = service().UpdateUser(kAdminToken, user.id, {.full_name = "Two"});
  ASSERT_TRUE(updated.ok());
  ASSERT_EQ(cache_.Peek(user.id).version, 1);

  // The batch's MultiGet reads version 1; before it returns, the cache
  // recovers and the repair completes.
  bool repaired_meanwhile = false;
  cache_.SetMultiGetHook([&](std::span<const std::int64_t>) {
    cache_.SetMultiGetHook(nullptr);
    cache_.SetWritesUnavailable(false);
    repaired_meanwhile = WaitForCachedRead(user.id).ok();
  });
  const std::vector<std::int64_t> ids = {user.id};
  StatusOr<std::vector<User>> batch = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_TRUE(repaired_meanwhile);
  ASSERT_EQ(cache_.Peek(user.id).version, 2);
  EXPECT_EQ(*batch, std::vector<User>{*updated}) << "served the entry read before the repair";
}

TEST_F(CacheRepairTest, FailedTombstoneIsRepaired) {
  const User user = Create(1);
  cache_.SetWritesUnavailable(true);
  ASSERT_TRUE(service().DeleteUser(kAdminToken, user.id).ok());
  ASSERT_EQ(cache_.Peek(user.id).kind, Kind::kUser) << "the fake should still hold the user";

  EXPECT_EQ(service().GetUser(kReaderToken, user.id).status().code(), StatusCode::kNotFound);
  const std::vector<std::int64_t> ids = {user.id};
  StatusOr<std::vector<User>> batch = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->empty()) << "served a deleted user from the cache";

  cache_.SetWritesUnavailable(false);
  EXPECT_TRUE(WaitForRepair([&] { return cache_.Peek(user.id).kind == Kind::kTombstone; }));
  EXPECT_EQ(cache_.Peek(user.id).version, 1);
  EXPECT_EQ(service().GetUser(kReaderToken, user.id).status().code(), StatusCode::kNotFound);
}

TEST_F(CacheRepairTest, FailedCreateFillDoesNotHideTheUserBehindANegativeEntry) {
  EXPECT_EQ(service().GetUser(kReaderToken, 1).status().code(), StatusCode::kNotFound);
  ASSERT_EQ(cache_.Peek(1).kind, Kind::kNegative);
  cache_.SetWritesUnavailable(true);
  const User user = Create(1);
  ASSERT_EQ(user.id, 1);

  StatusOr<User> got = service().GetUser(kReaderToken, 1);
  ASSERT_TRUE(got.ok()) << "the negative entry hid a created user: " << got.status().ToString();
  EXPECT_EQ(*got, user);

  cache_.SetWritesUnavailable(false);
  EXPECT_TRUE(WaitForRepair([&] { return cache_.Peek(1).kind == Kind::kUser; }));
  EXPECT_EQ(cache_.Peek(1).user, user);
}

TEST_F(CacheRepairTest, WriteWhileTheBreakerIsOpenIsRepairedAfterRecovery) {
  const User user = Create(1);
  cache_.SetUnavailable(true);
  for (int i = 0; i < kThreshold; ++i) ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());
  ASSERT_EQ(service().cache_breaker_state(), BreakerState::kOpen);
  const int puts = cache_.put_if_newer_calls();

  StatusOr<User> updated = service().UpdateUser(kAdminToken, user.id, {.full_name = "Two"});
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(cache_.put_if_newer_calls(), puts) << "wrote to the cache through an open breaker";

  cache_.SetUnavailable(false);
  // Still inside the open interval: reads of the pending id go to the store.
  StatusOr<User> got = service().GetUser(kReaderToken, user.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, *updated);

  EXPECT_TRUE(WaitForRepair([&] { return cache_.Peek(user.id).version == 2; }));
  EXPECT_EQ(cache_.Peek(user.id).user, *updated);
  StatusOr<User> cached = WaitForCachedRead(user.id);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(*cached, *updated);
}

TEST_F(CacheRepairTest, RepairWaitsForTheStore) {
  const User user = Create(1);
  cache_.SetWritesUnavailable(true);
  ASSERT_TRUE(service().UpdateUser(kAdminToken, user.id, {.full_name = "Two"}).ok());
  cache_.SetWritesUnavailable(false);
  store_.SetUnavailable(true);
  // The repair thread cannot read the row, so it must not guess: the stale
  // entry stays pending and untouched.
  const int finds = store_.find_by_id_calls();
  ASSERT_TRUE(WaitUntil([&] { return store_.find_by_id_calls() >= finds + 3; }));
  EXPECT_EQ(cache_.Peek(user.id).version, 1);
  EXPECT_EQ(stats().repairs.load(), 0u);
  EXPECT_EQ(service().GetUser(kReaderToken, user.id).status().code(), StatusCode::kUnavailable)
      << "a pending id must not be served from the stale entry";

  store_.SetUnavailable(false);
  EXPECT_TRUE(WaitForRepair([&] { return cache_.Peek(user.id).version == 2; }));
}

// ---------------------------------------------------------------- store down

class StoreOutageTest : public UserServiceFixture {};

TEST_F(StoreOutageTest, CachedReadsStillSucceed) {
  const User a = Create(1);
  const User b = Create(2);
  store_.SetUnavailable(true);
  StatusOr<User> got = service().GetUser(kReaderToken, a.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, a);
  const std::vector<std::int64_t> ids = {b.id, a.id};
  StatusOr<std::vector<User>> batch = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(*batch, (std::vector<User>{b, a}));
  EXPECT_EQ(store_.find_by_id_calls() + store_.find_by_ids_calls(), 0);
}

TEST_F(StoreOutageTest, UncachedReadIsUnavailable) {
  const User user = Create(1);
  cache_.Evict(user.id);
  store_.SetUnavailable(true);
  const Status status = service().GetUser(kReaderToken, user.id).status();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache_.Peek(user.id).kind, Kind::kEmpty) << "a failed read left a cache entry";
}

TEST_F(StoreOutageTest, WritesFailWithNothingHalfWritten) {
  const User user = Create(1);
  const int cache_calls = cache_.data_calls();
  store_.SetUnavailable(true);

  EXPECT_EQ(service().CreateUser(kAdminToken, MakeDraft(2)).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(service().UpdateUser(kAdminToken, user.id, {.full_name = "X"}).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(service().DeleteUser(kAdminToken, user.id).code(), StatusCode::kUnavailable);

  EXPECT_EQ(store_.size(), 1u);
  EXPECT_EQ(store_.Peek(user.id), user);
  // The create never reached the cache; the update and the delete, whose
  // outcome is unknown, each left their write intent (rule 10) around the
  // entry as it was, for the repair to settle.
  EXPECT_EQ(cache_.Peek(user.id).user, user);
  EXPECT_EQ(cache_.Peek(user.id).writers, 2);
  EXPECT_EQ(cache_.begin_write_calls(), 2);
  EXPECT_EQ(cache_.data_calls(), cache_calls + 2) << "a failed write changed the cache";

  store_.SetUnavailable(false);
  StatusOr<User> got = service().GetUser(kReaderToken, user.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, user);
  StatusOr<User> updated = service().UpdateUser(kAdminToken, user.id, {.full_name = "X"});
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->version, 2);
}

}  // namespace
}  // namespace polycrud::testing
