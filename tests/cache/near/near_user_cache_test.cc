// NearUserCache over the in-memory cache fake: hits skip the inner cache,
// every change forgets the id, a read that raced a change is not kept, TTL,
// bounded slots, and the UserService's read-your-writes through it.
#include "cache/near/near_user_cache.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/testing/memory_user_cache.h"
#include "tests/core/user_service_fixture.h"

namespace polycrud::testing {
namespace {

using namespace std::chrono_literals;

User MakeUser(std::int64_t id, std::int64_t version) {
  return User{.id = id,
              .username = "u" + std::to_string(id),
              .email = "u" + std::to_string(id) + "@example.com",
              .full_name = "Version " + std::to_string(version),
              .version = version};
}

class NearUserCacheTest : public ::testing::Test {
 protected:
  NearUserCacheTest() : near_(inner_, NearCacheOptions{.entries = 1024, .ttl = 60s}) {}
  MemoryUserCache inner_;
  NearUserCache near_;
};

TEST_F(NearUserCacheTest, SecondGetIsServedWithoutTheInnerCache) {
  ASSERT_TRUE(*inner_.PutIfNewer(MakeUser(7, 1)));
  StatusOr<CacheEntry> first = near_.Get(7);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->kind, CacheEntry::Kind::kUser);
  EXPECT_EQ(inner_.get_calls(), 1);
  StatusOr<CacheEntry> second = near_.Get(7);
  EXPECT_EQ(second->user, first->user);
  EXPECT_EQ(inner_.get_calls(), 1);
  EXPECT_EQ(near_.hits(), 1u);
  EXPECT_EQ(near_.misses(), 1u);
}

TEST_F(NearUserCacheTest, MissesAreNotKeptButAbsentEntriesAre) {
  EXPECT_EQ(near_.Get(8)->kind, CacheEntry::Kind::kMiss);
  EXPECT_EQ(near_.Get(8)->kind, CacheEntry::Kind::kMiss);
  EXPECT_EQ(inner_.get_calls(), 2);
  ASSERT_TRUE(inner_.PutTombstone(8, 3).ok());
  EXPECT_EQ(near_.Get(8)->kind, CacheEntry::Kind::kAbsent);
  EXPECT_EQ(near_.Get(8)->kind, CacheEntry::Kind::kAbsent);
  EXPECT_EQ(inner_.get_calls(), 3);
}

TEST_F(NearUserCacheTest, EveryKindOfChangeForgetsTheId) {
  ASSERT_TRUE(*near_.PutIfNewer(MakeUser(1, 1)));
  ASSERT_EQ(near_.Get(1)->user.version, 1);
  ASSERT_TRUE(*near_.PutIfNewer(MakeUser(1, 2)));
  EXPECT_EQ(near_.Get(1)->user.version, 2);

  ASSERT_TRUE(near_.PutTombstone(1, 2).ok());
  EXPECT_EQ(near_.Get(1)->kind, CacheEntry::Kind::kAbsent);

  ASSERT_TRUE(*near_.PutAbsent(2));
  ASSERT_EQ(near_.Get(2)->kind, CacheEntry::Kind::kAbsent);
  const std::vector<User> created = {MakeUser(2, 1)};
  ASSERT_EQ(*near_.PutManyIfNewer(created), 0u);
  EXPECT_EQ(near_.Get(2)->kind, CacheEntry::Kind::kUser);
}

TEST_F(NearUserCacheTest, AFailedChangeStillForgetsTheId) {
  ASSERT_TRUE(*inner_.PutIfNewer(MakeUser(3, 1)));
  ASSERT_EQ(near_.Get(3)->user.version, 1);
  inner_.SetWritesUnavailable(true);
  EXPECT_FALSE(near_.PutIfNewer(MakeUser(3, 2)).ok());
  inner_.SetWritesUnavailable(false);
  EXPECT_FALSE(near_.Peek(3).has_value());
}

// The race the stripe sequence closes: a read gets version 1 from the inner
// cache, a write replaces it with version 2 before the read stores what it
// got. The old value must not be kept.
TEST_F(NearUserCacheTest, AReadThatRacedAChangeIsNotKept) {
  ASSERT_TRUE(*inner_.PutIfNewer(MakeUser(4, 1)));
  inner_.SetGetHook([&](std::int64_t id) {
    inner_.SetGetHook(nullptr);
    ASSERT_TRUE(*near_.PutIfNewer(MakeUser(id, 2)));
  });
  EXPECT_EQ(near_.Get(4)->user.version, 1);  // what the racing read saw
  EXPECT_FALSE(near_.Peek(4).has_value()) << "a value read before a write was kept after it";
  EXPECT_EQ(near_.Get(4)->user.version, 2);
}

// The same while the change is still running: nothing read meanwhile is kept.
TEST_F(NearUserCacheTest, NothingIsKeptWhileAChangeOfTheStripeIsRunning) {
  ASSERT_TRUE(*inner_.PutIfNewer(MakeUser(5, 1)));
  Notification in_write;
  Notification release;
  inner_.SetPutIfNewerHook([&](const User&) {
    in_write.Notify();
    release.Wait();
  });
  std::thread writer([&] { ASSERT_TRUE(*near_.PutIfNewer(MakeUser(5, 2))); });
  ASSERT_TRUE(in_write.Wait());
  inner_.SetPutIfNewerHook(nullptr);
  EXPECT_EQ(near_.Get(5)->user.version, 1);  // the inner cache is not written yet
  EXPECT_FALSE(near_.Peek(5).has_value());
  release.Notify();
  writer.join();
  EXPECT_EQ(near_.Get(5)->user.version, 2);
}

TEST_F(NearUserCacheTest, EntriesExpireAfterTheTtl) {
  NearUserCache short_lived(inner_, NearCacheOptions{.entries = 16, .ttl = 30ms});
  ASSERT_TRUE(*inner_.PutIfNewer(MakeUser(6, 1)));
  ASSERT_TRUE(short_lived.Get(6).ok());
  ASSERT_TRUE(short_lived.Get(6).ok());
  EXPECT_EQ(inner_.get_calls(), 1);
  std::this_thread::sleep_for(60ms);
  ASSERT_TRUE(short_lived.Get(6).ok());
  EXPECT_EQ(inner_.get_calls(), 2);
}

TEST_F(NearUserCacheTest, FewSlotsStillAnswerEveryIdCorrectly) {
  NearUserCache tiny(inner_, NearCacheOptions{.entries = 3, .ttl = 60s});
  for (std::int64_t id = 1; id <= 50; ++id) ASSERT_TRUE(*inner_.PutIfNewer(MakeUser(id, id)));
  for (int pass = 0; pass < 3; ++pass) {
    for (std::int64_t id = 1; id <= 50; ++id) {
      StatusOr<CacheEntry> entry = tiny.Get(id);
      ASSERT_EQ(entry->kind, CacheEntry::Kind::kUser);
      EXPECT_EQ(entry->user.id, id);
      EXPECT_EQ(entry->user.version, id);
    }
  }
}

TEST_F(NearUserCacheTest, MultiGetMixesHitsAndInnerReads) {
  for (std::int64_t id = 1; id <= 4; ++id) ASSERT_TRUE(*inner_.PutIfNewer(MakeUser(id, 1)));
  ASSERT_TRUE(near_.Get(2).ok());
  const std::vector<std::int64_t> ids = {1, 2, 3, 4, 99};
  StatusOr<std::vector<CacheEntry>> entries = near_.MultiGet(ids);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), ids.size());
  for (std::size_t i = 0; i + 1 < ids.size(); ++i) EXPECT_EQ((*entries)[i].user.id, ids[i]);
  EXPECT_EQ(entries->back().kind, CacheEntry::Kind::kMiss);
  EXPECT_EQ(inner_.multi_get_calls(), 1);
  // Now everything but the miss is here.
  ASSERT_TRUE(near_.MultiGet(ids).ok());
  EXPECT_EQ(inner_.multi_get_calls(), 2);
  const std::vector<std::int64_t> hits = {1, 2, 3, 4};
  ASSERT_TRUE(near_.MultiGet(hits).ok());
  EXPECT_EQ(inner_.multi_get_calls(), 2);
}

// Through the service: a client's read after its own update, create or
// delete never returns what the near cache held before.
class NearCacheServiceTest : public UserServiceFixture {
 protected:
  void SetUp() override {
    near_ = std::make_unique<NearUserCache>(cache_, NearCacheOptions{.entries = 64, .ttl = 60s});
    service_ = std::make_unique<UserService>(store_, *near_, tokens_, clock_, UserServiceOptions{});
  }
  std::unique_ptr<NearUserCache> near_;
};

TEST_F(NearCacheServiceTest, ReadsAfterOwnWritesSeeThem) {
  const User user = Create(1);
  ASSERT_EQ(service().GetUser(kReaderToken, user.id)->version, 1);
  ASSERT_EQ(service().GetUser(kReaderToken, user.id)->version, 1);
  ASSERT_TRUE(near_->Peek(user.id).has_value());
  const int inner_reads = cache_.get_calls();
  ASSERT_EQ(service().GetUser(kReaderToken, user.id)->version, 1);
  EXPECT_EQ(cache_.get_calls(), inner_reads) << "a hit went to the inner cache";

  StatusOr<User> updated =
      service().UpdateUser(kAdminToken, user.id, UserPatch{.full_name = "Changed"});
  ASSERT_TRUE(updated.ok());
  StatusOr<User> read = service().GetUser(kReaderToken, user.id);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->version, 2);
  EXPECT_EQ(read->full_name, "Changed");

  ASSERT_TRUE(service().DeleteUser(kAdminToken, user.id).ok());
  EXPECT_EQ(service().GetUser(kReaderToken, user.id).status().code(), StatusCode::kNotFound);

  // A negative entry for the next id goes away when that id is created.
  const std::int64_t next = store_.last_id() + 1;
  EXPECT_EQ(service().GetUser(kReaderToken, next).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service().GetUser(kReaderToken, next).status().code(), StatusCode::kNotFound);
  const User created = Create(2);
  ASSERT_EQ(created.id, next);
  EXPECT_TRUE(service().GetUser(kReaderToken, next).ok());
}

// Change events (docs/events.md): what another server changed is forgotten
// here, and nothing is served while the events are not arriving.
class NearCacheEventsTest : public ::testing::Test {
 protected:
  NearCacheEventsTest()
      : slots_(NearCacheOptions{.entries = 1024, .ttl = 60s}), near_(inner_, slots_) {}
  MemoryUserCache inner_;
  NearCacheSlots slots_;
  NearUserCache near_;
};

TEST_F(NearCacheEventsTest, AnIdChangedByAnotherServerIsForgottenOnItsEvent) {
  ASSERT_TRUE(*inner_.PutIfNewer(MakeUser(5, 1)));
  ASSERT_EQ(near_.Get(5)->user.version, 1);
  ASSERT_TRUE(*inner_.PutIfNewer(MakeUser(5, 2)));  // another server's write: not seen here
  EXPECT_EQ(near_.Get(5)->user.version, 1);
  slots_.Forget(5);  // its event arrives
  EXPECT_EQ(near_.Get(5)->user.version, 2);
  EXPECT_EQ(near_.Get(5)->user.version, 2);
  EXPECT_EQ(inner_.get_calls(), 2);
}

TEST_F(NearCacheEventsTest, AReadUnderWayWhenTheEventArrivesKeepsNothing) {
  ASSERT_TRUE(*inner_.PutIfNewer(MakeUser(6, 1)));
  CacheEntry entry;
  std::uint64_t sequence = 0;
  ASSERT_FALSE(slots_.Lookup(6, entry, sequence));
  const CacheEntry read = *inner_.Get(6);  // the read began before the event
  slots_.Forget(6);
  slots_.Store(6, read, sequence);
  EXPECT_FALSE(slots_.Peek(6).has_value());
}

TEST_F(NearCacheEventsTest, UntrustedItServesAndKeepsNothingAndTrustedAgainItStartsEmpty) {
  ASSERT_TRUE(*inner_.PutIfNewer(MakeUser(9, 1)));
  ASSERT_EQ(near_.Get(9)->user.version, 1);
  slots_.SetTrusted(false);  // the events stopped arriving
  EXPECT_FALSE(slots_.Peek(9).has_value());
  ASSERT_TRUE(*inner_.PutIfNewer(MakeUser(9, 2)));
  EXPECT_EQ(near_.Get(9)->user.version, 2);
  EXPECT_EQ(near_.Get(9)->user.version, 2);
  EXPECT_EQ(inner_.get_calls(), 3);  // every read went to the inner cache
  EXPECT_FALSE(slots_.Peek(9).has_value());

  // A read that began while untrusted keeps nothing once trusted again.
  CacheEntry entry;
  std::uint64_t sequence = 0;
  ASSERT_FALSE(slots_.Lookup(9, entry, sequence));
  const CacheEntry read = *inner_.Get(9);
  slots_.SetTrusted(true);
  slots_.Store(9, read, sequence);
  EXPECT_FALSE(slots_.Peek(9).has_value());
  EXPECT_EQ(near_.Get(9)->user.version, 2);
  EXPECT_TRUE(slots_.Peek(9).has_value());
}

}  // namespace
}  // namespace polycrud::testing
