// CacheRepairer on its own over the in-memory fakes, driven round by round
// (no background thread): what a pending id becomes, and when it stays pending.
#include "core/cache_repairer.h"

#include <gtest/gtest.h>

#include "core/cache_health.h"
#include "core/testing/fake_clock.h"
#include "core/testing/memory_user_cache.h"
#include "core/testing/memory_user_store.h"

namespace polycrud::testing {
namespace {

class CacheRepairerTest : public ::testing::Test {
 protected:
  User Insert(const std::string& name) {
    StatusOr<User> user = store_.Insert(
        UserDraft{.username = name, .email = name + "@example.com", .full_name = name}, 1);
    EXPECT_TRUE(user.ok());
    return *user;
  }

  FakeClock clock_;
  MemoryUserStore store_;
  MemoryUserCache cache_;
  CacheHealth health_{clock_, /*failure_threshold=*/3, /*open_ms=*/500,
                      /*fallback_read_concurrency=*/8};
  CacheRepairer repairer_{store_, cache_, health_,
                          CacheRepairerOptions{.interval_ms = 0, .max_pending = 2}};
};

TEST_F(CacheRepairerTest, RepairWritesTheRowsCurrentVersionAndForgetsTheId) {
  const User user = Insert("ada");
  repairer_.MarkPending(user.id, 0);
  EXPECT_TRUE(repairer_.IsPending(user.id));
  repairer_.RepairPending();
  EXPECT_FALSE(repairer_.IsPending(user.id));
  StatusOr<CacheEntry> entry = cache_.Get(user.id);
  ASSERT_TRUE(entry.ok());
  ASSERT_EQ(entry->kind, CacheEntry::Kind::kUser);
  EXPECT_EQ(entry->user.version, user.version);
  EXPECT_EQ(health_.stats().repairs.load(), 1u);
}

TEST_F(CacheRepairerTest, ADeletedRowBecomesATombstoneThatRefusesOlderFills) {
  const User user = Insert("bob");
  ASSERT_TRUE(store_.Delete(user.id).ok());
  repairer_.MarkPending(user.id, user.version + 1);
  repairer_.RepairPending();
  EXPECT_FALSE(repairer_.IsPending(user.id));
  StatusOr<bool> stale_fill = cache_.PutIfNewer(user);
  ASSERT_TRUE(stale_fill.ok());
  EXPECT_FALSE(*stale_fill);
}

TEST_F(CacheRepairerTest, StaysPendingWhileTheStoreOrTheCacheIsDown) {
  const User user = Insert("cy");
  repairer_.MarkPending(user.id, 0);
  store_.SetUnavailable(true);
  repairer_.RepairPending();
  EXPECT_TRUE(repairer_.IsPending(user.id));
  store_.SetUnavailable(false);
  cache_.SetUnavailable(true);
  repairer_.RepairPending();
  EXPECT_TRUE(repairer_.IsPending(user.id));
  EXPECT_EQ(health_.stats().errors.load(), 1u);
  cache_.SetUnavailable(false);
  repairer_.RepairPending();
  EXPECT_FALSE(repairer_.IsPending(user.id));
}

TEST_F(CacheRepairerTest, DrainRepairsEverythingPendingBeforeShutdown) {
  const User first = Insert("dee");
  const User second = Insert("eve");
  repairer_.MarkPending(first.id, 0);
  repairer_.MarkPending(second.id, 0);
  EXPECT_EQ(repairer_.Drain(clock_, /*budget_ms=*/1000, /*pause_ms=*/1), 0u);
  EXPECT_EQ(cache_.Get(first.id)->kind, CacheEntry::Kind::kUser);
  EXPECT_EQ(cache_.Get(second.id)->kind, CacheEntry::Kind::kUser);
}

TEST_F(CacheRepairerTest, DrainGivesUpAfterItsBudgetAndSaysWhatIsLeft) {
  const User user = Insert("fay");
  repairer_.MarkPending(user.id, 0);
  cache_.SetUnavailable(true);
  // The fake clock stands still unless moved: each round's store read moves it.
  store_.SetFindByIdHook([&](std::int64_t) { clock_.AdvanceMs(400); });
  EXPECT_EQ(repairer_.Drain(clock_, /*budget_ms=*/1000, /*pause_ms=*/1), 1u);
  store_.SetFindByIdHook(nullptr);
  cache_.SetUnavailable(false);
}

TEST_F(CacheRepairerTest, BeyondMaxPendingNewIdsAreDroppedAndCounted) {
  repairer_.MarkPending(1, 0);
  repairer_.MarkPending(2, 0);
  repairer_.MarkPending(2, 0);  // already pending: kept, not dropped
  repairer_.MarkPending(3, 0);
  EXPECT_EQ(repairer_.pending(), 2u);
  EXPECT_FALSE(repairer_.IsPending(3));
  EXPECT_EQ(health_.stats().repairs_dropped.load(), 1u);
}

}  // namespace
}  // namespace polycrud::testing
