// The fakes are only as good as their likeness to the drivers: these pin the
// rules MemoryUserStore and MemoryUserCache share with MysqlUserStore and
// RedisUserCache (its Lua fill script, SET NX and SET).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/testing/memory_user_cache.h"
#include "core/testing/memory_user_store.h"

namespace polycrud::testing {
namespace {

using Kind = MemoryUserCache::Slot::Kind;

User UserAt(std::int64_t id, std::int64_t version) {
  return User{.id = id, .username = "u", .email = "u@x", .full_name = "U", .version = version};
}

UserDraft Draft(const char* username, const char* email) {
  return UserDraft{.username = username, .email = email, .full_name = "Someone"};
}

// ---------------------------------------------------------------- cache

TEST(MemoryUserCacheTest, EmptyKeyIsAMiss) {
  MemoryUserCache cache;
  StatusOr<CacheEntry> entry = cache.Get(1);
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->kind, CacheEntry::Kind::kMiss);
}

TEST(MemoryUserCacheTest, PutIfNewerRefusesTheSameOrAnOlderVersion) {
  MemoryUserCache cache;
  EXPECT_TRUE(*cache.PutIfNewer(UserAt(1, 2)));
  EXPECT_FALSE(*cache.PutIfNewer(UserAt(1, 2)));
  EXPECT_FALSE(*cache.PutIfNewer(UserAt(1, 1)));
  EXPECT_TRUE(*cache.PutIfNewer(UserAt(1, 3)));
  EXPECT_EQ(cache.Peek(1).version, 3);
  EXPECT_EQ(cache.refused_puts(), 2);
  StatusOr<CacheEntry> entry = cache.Get(1);
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->kind, CacheEntry::Kind::kUser);
  EXPECT_EQ(entry->user, UserAt(1, 3));
}

TEST(MemoryUserCacheTest, TombstoneRefusesFillsUpToItsVersion) {
  MemoryUserCache cache;
  ASSERT_TRUE(cache.PutTombstone(1, 3).ok());
  EXPECT_FALSE(*cache.PutIfNewer(UserAt(1, 3)));
  EXPECT_FALSE(*cache.PutIfNewer(UserAt(1, 1)));
  EXPECT_EQ(cache.Peek(1).kind, Kind::kTombstone);
  EXPECT_EQ(cache.Get(1)->kind, CacheEntry::Kind::kAbsent);
  EXPECT_TRUE(*cache.PutIfNewer(UserAt(1, 4)));
}

TEST(MemoryUserCacheTest, NegativeEntryNeverBlocksAUser) {
  MemoryUserCache cache;
  EXPECT_TRUE(*cache.PutAbsent(1));
  EXPECT_EQ(cache.Get(1)->kind, CacheEntry::Kind::kAbsent);
  EXPECT_TRUE(*cache.PutIfNewer(UserAt(1, 1)));
  EXPECT_EQ(cache.Peek(1).kind, Kind::kUser);
}

TEST(MemoryUserCacheTest, PutAbsentWritesOnlyAnEmptyKey) {
  MemoryUserCache cache;
  ASSERT_TRUE(*cache.PutIfNewer(UserAt(1, 1)));
  ASSERT_TRUE(cache.PutTombstone(2, 1).ok());
  EXPECT_FALSE(*cache.PutAbsent(1));
  EXPECT_FALSE(*cache.PutAbsent(2));
  EXPECT_EQ(cache.Peek(1).kind, Kind::kUser);
  EXPECT_EQ(cache.Peek(2).kind, Kind::kTombstone);
  EXPECT_TRUE(*cache.PutAbsent(3));
  EXPECT_FALSE(*cache.PutAbsent(3));
}

TEST(MemoryUserCacheTest, PutTombstoneReplacesWhateverTheKeyHolds) {
  MemoryUserCache cache;
  ASSERT_TRUE(*cache.PutIfNewer(UserAt(1, 5)));
  ASSERT_TRUE(*cache.PutAbsent(2));
  ASSERT_TRUE(cache.PutTombstone(1, 5).ok());
  ASSERT_TRUE(cache.PutTombstone(2, 7).ok());
  EXPECT_EQ(cache.Peek(1).kind, Kind::kTombstone);
  EXPECT_EQ(cache.Peek(1).version, 5);
  EXPECT_EQ(cache.Peek(2).kind, Kind::kTombstone);
  EXPECT_EQ(cache.Peek(2).version, 7);
}

TEST(MemoryUserCacheTest, PutManyIfNewerAppliesTheRuleToEachUser) {
  MemoryUserCache cache;
  ASSERT_TRUE(*cache.PutIfNewer(UserAt(2, 5)));
  const std::vector<User> users = {UserAt(1, 1), UserAt(2, 4), UserAt(3, 2)};
  StatusOr<std::size_t> refused = cache.PutManyIfNewer(users);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(*refused, 1u);
  EXPECT_EQ(cache.Peek(1).version, 1);
  EXPECT_EQ(cache.Peek(2).version, 5);
  EXPECT_EQ(cache.Peek(3).version, 2);
  EXPECT_EQ(cache.put_many_if_newer_calls(), 1);
}

TEST(MemoryUserCacheTest, MultiGetIsParallelToTheIds) {
  MemoryUserCache cache;
  ASSERT_TRUE(*cache.PutIfNewer(UserAt(1, 1)));
  ASSERT_TRUE(*cache.PutAbsent(3));
  const std::vector<std::int64_t> ids = {3, 2, 1, 1};
  StatusOr<std::vector<CacheEntry>> entries = cache.MultiGet(ids);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[0].kind, CacheEntry::Kind::kAbsent);
  EXPECT_EQ((*entries)[1].kind, CacheEntry::Kind::kMiss);
  EXPECT_EQ((*entries)[2].kind, CacheEntry::Kind::kUser);
  EXPECT_EQ((*entries)[3].user, UserAt(1, 1));
}

TEST(MemoryUserCacheTest, OutageFailsEveryCallAndChangesNothing) {
  MemoryUserCache cache;
  ASSERT_TRUE(*cache.PutIfNewer(UserAt(1, 1)));
  cache.SetUnavailable(true);
  const std::vector<std::int64_t> ids = {1};
  const std::vector<User> users = {UserAt(1, 2)};
  EXPECT_EQ(cache.Get(1).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache.MultiGet(ids).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache.PutIfNewer(UserAt(1, 2)).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache.PutManyIfNewer(users).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache.PutAbsent(2).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache.PutTombstone(1, 1).code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache.Ping().code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache.Peek(1).version, 1);
  EXPECT_EQ(cache.Peek(2).kind, Kind::kEmpty);
}

TEST(MemoryUserCacheTest, WritesOutageStillServesReads) {
  MemoryUserCache cache;
  ASSERT_TRUE(*cache.PutIfNewer(UserAt(1, 1)));
  cache.SetWritesUnavailable(true);
  EXPECT_EQ(cache.Get(1)->user, UserAt(1, 1));
  EXPECT_TRUE(cache.Ping().ok());
  EXPECT_EQ(cache.PutIfNewer(UserAt(1, 2)).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache.PutTombstone(1, 1).code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache.Peek(1).version, 1);
}

// ---------------------------------------------------------------- store

TEST(MemoryUserStoreTest, InsertAssignsIncreasingIdsNeverReused) {
  MemoryUserStore store;
  StatusOr<User> a = store.Insert(Draft("ada", "ada@x"), 10);
  StatusOr<User> b = store.Insert(Draft("bob", "bob@x"), 20);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->id, 1);
  EXPECT_EQ(b->id, 2);
  EXPECT_EQ(a->version, 1);
  EXPECT_EQ(b->created_at_ms, 20);
  EXPECT_EQ(b->updated_at_ms, 20);
  ASSERT_TRUE(store.Delete(b->id).ok());
  StatusOr<User> c = store.Insert(Draft("bob", "bob@x"), 30);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->id, 3);
}

TEST(MemoryUserStoreTest, UsernameAndCaseInsensitiveEmailAreUnique) {
  MemoryUserStore store;
  ASSERT_TRUE(store.Insert(Draft("ada", "Ada@Example.com"), 1).ok());
  StatusOr<User> same_name = store.Insert(Draft("ada", "other@x"), 1);
  StatusOr<User> same_email = store.Insert(Draft("eve", "ADA@example.COM"), 1);
  EXPECT_EQ(same_name.status().conflict_kind(), ConflictKind::kDuplicate);
  EXPECT_EQ(same_email.status().conflict_kind(), ConflictKind::kDuplicate);
  EXPECT_EQ(store.size(), 1u);
}

TEST(MemoryUserStoreTest, UpdateChecksTheExpectedVersionAndBumpsIt) {
  MemoryUserStore store;
  ASSERT_TRUE(store.Insert(Draft("ada", "ada@x"), 1).ok());
  StatusOr<User> stale = store.Update(1, {.full_name = "B", .expected_version = 2}, 5);
  EXPECT_EQ(stale.status().conflict_kind(), ConflictKind::kVersionMismatch);
  StatusOr<User> ok = store.Update(1, {.full_name = "B", .expected_version = 1}, 5);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->version, 2);
  EXPECT_EQ(ok->updated_at_ms, 5);
  EXPECT_EQ(store.Update(9, {.full_name = "B"}, 5).status().code(), StatusCode::kNotFound);
}

TEST(MemoryUserStoreTest, FindByIdsReturnsEachExistingIdOnce) {
  MemoryUserStore store;
  for (const char* name : {"aaa", "bbb", "ccc"}) {
    ASSERT_TRUE(store.Insert(Draft(name, (std::string(name) + "@x").c_str()), 1).ok());
  }
  const std::vector<std::int64_t> ids = {3, 1, 3, 42};
  StatusOr<std::vector<User>> users = store.FindByIds(ids);
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ(store.last_find_by_ids(), ids);
}

TEST(MemoryUserStoreTest, OutageFailsEveryCallAndChangesNothing) {
  MemoryUserStore store;
  ASSERT_TRUE(store.Insert(Draft("ada", "ada@x"), 1).ok());
  const User before = *store.Peek(1);
  store.SetUnavailable(true);
  EXPECT_EQ(store.Insert(Draft("bob", "bob@x"), 1).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.Update(1, {.full_name = "X"}, 1).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.Delete(1).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.FindById(1).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.ListAfter(0, 10).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.Ping().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.Peek(1), before);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.last_id(), 1);
}

}  // namespace
}  // namespace polycrud::testing
