// The versioned cache-aside protocol of docs/cache-protocol.md, driven through UserService
// over the in-memory fakes: hits, fills, negative entries, replace-on-write,
// the stale-fill races (interleaved deterministically with store hooks),
// single-flight coalescing and batch reads.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <thread>
#include <vector>

#include "core/user_service.h"
#include "tests/core/user_service_fixture.h"

namespace polycrud::testing {
namespace {

using Kind = MemoryUserCache::Slot::Kind;

class CachedUserReadTest : public UserServiceFixture {};

TEST_F(CachedUserReadTest, WritesReplaceTheCacheEntry) {
  const User created = Create(1);
  EXPECT_EQ(cache_.Peek(created.id).kind, Kind::kUser);
  EXPECT_EQ(cache_.Peek(created.id).user, created);

  StatusOr<User> updated = service().UpdateUser(kAdminToken, created.id, {.full_name = "Two"});
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(cache_.Peek(created.id).user, *updated);

  ASSERT_TRUE(service().DeleteUser(kAdminToken, created.id).ok());
  const MemoryUserCache::Slot slot = cache_.Peek(created.id);
  EXPECT_EQ(slot.kind, Kind::kTombstone);
  EXPECT_EQ(slot.version, 2) << "the tombstone carries the deleted version";
}

TEST_F(CachedUserReadTest, HitIsServedWithoutTheStore) {
  const User user = Create(1);
  StatusOr<User> got = service().GetUser(kReaderToken, user.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, user);
  EXPECT_EQ(store_.find_by_id_calls(), 0);
  EXPECT_EQ(stats().hits.load(), 1u);
  EXPECT_EQ(stats().misses.load(), 0u);
}

TEST_F(CachedUserReadTest, MissFillsAndTheNextReadHits) {
  const User user = Create(1);
  cache_.Evict(user.id);

  StatusOr<User> first = service().GetUser(kReaderToken, user.id);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, user);
  EXPECT_EQ(store_.find_by_id_calls(), 1);
  EXPECT_EQ(stats().misses.load(), 1u);
  EXPECT_EQ(stats().fills.load(), 1u);
  EXPECT_EQ(cache_.Peek(user.id).user, user);

  StatusOr<User> second = service().GetUser(kReaderToken, user.id);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, user);
  EXPECT_EQ(store_.find_by_id_calls(), 1);
  EXPECT_EQ(stats().hits.load(), 1u);
}

TEST_F(CachedUserReadTest, AbsentIdIsCachedNegatively) {
  EXPECT_EQ(service().GetUser(kReaderToken, 42).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(cache_.Peek(42).kind, Kind::kNegative);
  EXPECT_EQ(service().GetUser(kReaderToken, 42).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_.find_by_id_calls(), 1);
  EXPECT_EQ(stats().negative_hits.load(), 1u);
}

TEST_F(CachedUserReadTest, CreateClearsItsNegativeEntry) {
  // The store hands out id 1 next; a reader asks for it first.
  EXPECT_EQ(service().GetUser(kReaderToken, 1).status().code(), StatusCode::kNotFound);
  ASSERT_EQ(cache_.Peek(1).kind, Kind::kNegative);

  const User user = Create(1);
  ASSERT_EQ(user.id, 1);
  StatusOr<User> got = service().GetUser(kReaderToken, 1);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, user);
  EXPECT_EQ(store_.find_by_id_calls(), 1) << "served from the entry the create wrote";
}

TEST_F(CachedUserReadTest, DeletedUserIsNotFoundFromTheTombstone) {
  const User user = Create(1);
  ASSERT_TRUE(service().DeleteUser(kAdminToken, user.id).ok());
  EXPECT_EQ(service().GetUser(kReaderToken, user.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_.find_by_id_calls(), 0);
  EXPECT_EQ(stats().negative_hits.load(), 1u);
}

// docs/cache-protocol.md's race: a reader misses and reads version 1; a writer commits
// version 2 and replaces the cache entry; only then does the reader's fill of
// version 1 arrive. It must be refused.
TEST_F(CachedUserReadTest, StaleFillAfterUpdateIsRefused) {
  const User user = Create(1);
  cache_.Evict(user.id);

  Notification read_done;
  Notification writer_done;
  store_.SetFindByIdHook([&](std::int64_t) {
    read_done.Notify();
    writer_done.Wait();
  });
  std::jthread reader([&] {
    StatusOr<User> got = service().GetUser(kReaderToken, user.id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    // The read overlapped the update, so either version is a valid answer;
    // the one it read from the store is version 1.
    EXPECT_EQ(got->version, 1);
  });
  const ScopeExit unblock([&] { writer_done.Notify(); });

  ASSERT_TRUE(read_done.Wait());
  store_.SetFindByIdHook(nullptr);
  StatusOr<User> updated = service().UpdateUser(kAdminToken, user.id, {.full_name = "Newer"});
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  ASSERT_EQ(updated->version, 2);
  ASSERT_EQ(cache_.Peek(user.id).version, 2);
  writer_done.Notify();
  reader.join();

  EXPECT_EQ(cache_.Peek(user.id).kind, Kind::kUser);
  EXPECT_EQ(cache_.Peek(user.id).user, *updated) << "the stale fill overwrote the update";
  EXPECT_EQ(stats().refused_stale_fills.load(), 1u);
  EXPECT_EQ(stats().fills.load(), 0u);
  EXPECT_EQ(cache_.refused_puts(), 1);

  StatusOr<User> after = service().GetUser(kReaderToken, user.id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *updated);
  EXPECT_EQ(store_.find_by_id_calls(), 1);
}

// The same race against a delete: the tombstone refuses the stale fill, so
// the deleted user does not come back.
TEST_F(CachedUserReadTest, StaleFillAfterDeleteIsRefused) {
  const User user = Create(1);
  cache_.Evict(user.id);

  Notification read_done;
  Notification writer_done;
  store_.SetFindByIdHook([&](std::int64_t) {
    read_done.Notify();
    writer_done.Wait();
  });
  std::jthread reader([&] {
    StatusOr<User> got = service().GetUser(kReaderToken, user.id);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
  });
  const ScopeExit unblock([&] { writer_done.Notify(); });

  ASSERT_TRUE(read_done.Wait());
  store_.SetFindByIdHook(nullptr);
  ASSERT_TRUE(service().DeleteUser(kAdminToken, user.id).ok());
  writer_done.Notify();
  reader.join();

  const MemoryUserCache::Slot slot = cache_.Peek(user.id);
  EXPECT_EQ(slot.kind, Kind::kTombstone) << "the stale fill resurrected a deleted user";
  EXPECT_EQ(slot.version, 1);
  EXPECT_EQ(stats().refused_stale_fills.load(), 1u);
  EXPECT_EQ(service().GetUser(kReaderToken, user.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_.find_by_id_calls(), 1);
}

// A fill that raced a create's negative entry the other way round: the
// reader saw "no such id", the user was created meanwhile; the negative entry
// must not hide the new user.
TEST_F(CachedUserReadTest, StaleNegativeFillAfterCreateIsRefused) {
  Notification read_done;
  Notification writer_done;
  store_.SetFindByIdHook([&](std::int64_t) {
    read_done.Notify();
    writer_done.Wait();
  });
  std::jthread reader([&] {
    EXPECT_EQ(service().GetUser(kReaderToken, 1).status().code(), StatusCode::kNotFound);
  });
  const ScopeExit unblock([&] { writer_done.Notify(); });

  ASSERT_TRUE(read_done.Wait());
  store_.SetFindByIdHook(nullptr);
  const User user = Create(1);
  ASSERT_EQ(user.id, 1);
  writer_done.Notify();
  reader.join();

  EXPECT_EQ(cache_.Peek(1).kind, Kind::kUser);
  StatusOr<User> got = service().GetUser(kReaderToken, 1);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, user);
}

// docs/cache-protocol.md rule 4: N concurrent readers of a cold id cause one store query.
TEST_F(CachedUserReadTest, ConcurrentMissesOfOneIdCauseOneStoreRead) {
  constexpr int kReaders = 8;
  const User user = Create(1);
  cache_.Evict(user.id);

  // The first reader to reach the store holds its query open until every
  // reader has missed the cache, so the others have to join its flight.
  store_.SetFindByIdHook([&](std::int64_t) {
    EXPECT_TRUE(
        WaitUntil([&] { return stats().misses.load() == static_cast<std::uint64_t>(kReaders); }));
    // A reader counts its miss just before it joins the flight; give the
    // last ones a moment to get from one to the other.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  });
  std::vector<std::jthread> readers;
  std::atomic<int> correct{0};
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&] {
      StatusOr<User> got = service().GetUser(kReaderToken, user.id);
      if (got.ok() && *got == user) correct.fetch_add(1);
    });
  }
  for (std::jthread& t : readers) t.join();

  EXPECT_EQ(correct.load(), kReaders);
  EXPECT_EQ(store_.find_by_id_calls(), 1);
  EXPECT_EQ(stats().coalesced_misses.load(), static_cast<std::uint64_t>(kReaders - 1));
  EXPECT_EQ(stats().fills.load(), 1u);
}

TEST_F(CachedUserReadTest, MissesOfDifferentIdsAreNotCoalesced) {
  const User a = Create(1);
  const User b = Create(2);
  cache_.EvictAll();
  ASSERT_TRUE(service().GetUser(kReaderToken, a.id).ok());
  ASSERT_TRUE(service().GetUser(kReaderToken, b.id).ok());
  EXPECT_EQ(store_.find_by_id_calls(), 2);
  EXPECT_EQ(stats().coalesced_misses.load(), 0u);
}

// ---------------------------------------------------------------- batch reads

class CachedBatchReadTest : public UserServiceFixture {};

std::vector<std::int64_t> IdsOf(const std::vector<User>& users) {
  std::vector<std::int64_t> ids;
  for (const User& u : users) ids.push_back(u.id);
  return ids;
}

TEST_F(CachedBatchReadTest, ReturnsRequestOrderAndOmitsMissingIds) {
  for (int n = 1; n <= 3; ++n) Create(n);
  const std::vector<std::int64_t> ids = {3, 99, 1, 2};
  StatusOr<std::vector<User>> users = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(users.ok()) << users.status().ToString();
  EXPECT_EQ(IdsOf(*users), (std::vector<std::int64_t>{3, 1, 2}));
  EXPECT_EQ((*users)[0], *store_.Peek(3));
}

TEST_F(CachedBatchReadTest, RepeatsDuplicateIds) {
  for (int n = 1; n <= 2; ++n) Create(n);
  cache_.Evict(2);
  const std::vector<std::int64_t> ids = {2, 1, 2, 2};
  StatusOr<std::vector<User>> users = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(users.ok()) << users.status().ToString();
  EXPECT_EQ(IdsOf(*users), (std::vector<std::int64_t>{2, 1, 2, 2}));
  EXPECT_EQ(store_.last_find_by_ids(), (std::vector<std::int64_t>{2}))
      << "a missed id is asked for once";
}

TEST_F(CachedBatchReadTest, UsesOneMultiGetAndOneStoreQueryForTheMisses) {
  for (int n = 1; n <= 4; ++n) Create(n);
  cache_.Evict(2);
  cache_.Evict(4);
  const std::vector<std::int64_t> ids = {4, 1, 2, 3, 77};
  StatusOr<std::vector<User>> users = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(users.ok()) << users.status().ToString();
  EXPECT_EQ(IdsOf(*users), (std::vector<std::int64_t>{4, 1, 2, 3}));

  EXPECT_EQ(cache_.multi_get_calls(), 1);
  EXPECT_EQ(cache_.get_calls(), 0);
  EXPECT_EQ(store_.find_by_ids_calls(), 1);
  EXPECT_EQ(store_.find_by_id_calls(), 0);
  EXPECT_EQ(store_.last_find_by_ids(), (std::vector<std::int64_t>{2, 4, 77}));
  // The misses were filled, in one cache call.
  EXPECT_EQ(cache_.put_many_if_newer_calls(), 1);
  EXPECT_EQ(cache_.Peek(2).user, *store_.Peek(2));
  EXPECT_EQ(cache_.Peek(4).user, *store_.Peek(4));
  EXPECT_EQ(stats().fills.load(), 2u);
}

TEST_F(CachedBatchReadTest, AllHitsDoNotTouchTheStore) {
  for (int n = 1; n <= 3; ++n) Create(n);
  const std::vector<std::int64_t> ids = {1, 2, 3};
  StatusOr<std::vector<User>> users = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(users->size(), 3u);
  EXPECT_EQ(store_.find_by_ids_calls(), 0);
  EXPECT_EQ(stats().hits.load(), 3u);
}

TEST_F(CachedBatchReadTest, NegativeEntriesAndTombstonesAreOmittedWithoutTheStore) {
  const User kept = Create(1);
  const User gone = Create(2);
  ASSERT_TRUE(service().DeleteUser(kAdminToken, gone.id).ok());
  EXPECT_EQ(service().GetUser(kReaderToken, 50).status().code(), StatusCode::kNotFound);
  const std::vector<std::int64_t> ids = {50, gone.id, kept.id};
  StatusOr<std::vector<User>> users = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(*users, std::vector<User>{kept});
  EXPECT_EQ(store_.find_by_ids_calls(), 0);
}

TEST_F(CachedBatchReadTest, StaleBatchFillAfterUpdateIsRefused) {
  const User user = Create(1);
  cache_.Evict(user.id);
  // The store answers the batch with version 1; before the fill, a writer
  // commits version 2 (same thread: the hook runs inside FindByIds).
  User updated;
  store_.SetFindByIdsHook([&](std::span<const std::int64_t>) {
    StatusOr<User> u = service().UpdateUser(kAdminToken, user.id, {.full_name = "Newer"});
    ASSERT_TRUE(u.ok());
    updated = *u;
  });
  const std::vector<std::int64_t> ids = {user.id};
  StatusOr<std::vector<User>> users = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(updated.version, 2);
  EXPECT_EQ(cache_.Peek(user.id).user, updated);
  EXPECT_EQ(stats().refused_stale_fills.load(), 1u);
}

TEST_F(CachedBatchReadTest, StoreDownForMissesIsUnavailable) {
  Create(1);
  cache_.EvictAll();
  store_.SetUnavailable(true);
  const std::vector<std::int64_t> ids = {1};
  EXPECT_EQ(service().BatchGetUsers(kReaderToken, ids).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace polycrud::testing
