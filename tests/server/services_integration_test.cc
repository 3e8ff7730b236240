// Services (server/services.h) against the test stack's Redis, over the
// in-memory store: each runtime gets the service it may call, and all of them
// share one cache state, so what one runtime writes the others read.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "core/testing/memory_user_store.h"
#include "core/user_service.h"
#include "runtime/fiber_scheduler.h"
#include "server/services.h"
#include "tests/core/user_service_fixture.h"
#include "tests/support/settings.h"

namespace polycrud::server {
namespace {

using testing::kAdminToken;
using testing::kReaderToken;

// The memory store numbers users from 1, like every fresh store; ids on the
// shared test Redis must not meet other tests' entries.
UserDraft Draft(const std::string& prefix) {
  static const std::string run = std::to_string(std::random_device{}() % 1'000'000'000);
  static std::atomic<int> n{0};
  const std::string name = prefix + "_" + run + "_" + std::to_string(n++);
  return {.username = name, .email = name + "@example.com", .full_name = "Full " + name};
}

class ServicesTest : public ::testing::TestWithParam<int> {
 protected:
  ServicesOptions Options() const {
    ServicesOptions options;
    options.redis.endpoint.port = std::stoi(testing::Setting("POLYCRUD_TEST_REDIS_PORT"));
    options.redis.endpoint.user = testing::Setting("POLYCRUD_TEST_REDIS_USER");
    options.redis.endpoint.password = testing::Setting("POLYCRUD_TEST_REDIS_PASSWORD");
    options.redis.pipelined_connections = GetParam();
    options.near.entries = 0;
    options.offload_workers = 2;
    return options;
  }
  // Runs `body` on a fiber of a new thread (a fiber thread of the Thrift face).
  template <typename Body>
  static void OnFiberThread(Body body) {
    std::thread thread([&] {
      runtime::FiberScheduler scheduler;
      scheduler.Spawn([&] { body(); });
      scheduler.Run();
    });
    thread.join();
  }

  testing::MemoryUserStore store_{
      5'000'000'000 + static_cast<std::int64_t>(std::random_device{}() % 1'000'000) * 1000};
  const Sha256TokenVerifier tokens_ = testing::MakeTokenVerifier();
  SystemClock clock_;
};

TEST_P(ServicesTest, EachFiberThreadHasAServiceOfItsOwnOverOneCacheState) {
  Services services(store_, tokens_, clock_, Options());
  UserService& first = services.ForFiberThread(0);
  EXPECT_EQ(&services.ForFiberThread(0), &first);
  EXPECT_NE(&services.ForFiberThread(1), &first);
  EXPECT_NE(&services.threads(), &first);
  EXPECT_EQ(&first.cache_stats(), &services.threads().cache_stats());
}

TEST_P(ServicesTest, AWriteOnAFiberThreadIsReadOnPlainThreadsAndBack) {
  Services services(store_, tokens_, clock_, Options());
  StatusOr<User> created = Status::Internal("not run");
  OnFiberThread(
      [&] { created = services.ForFiberThread(0).CreateUser(kAdminToken, Draft("fiber")); });
  ASSERT_TRUE(created.ok()) << created.status().ToString();

  const std::uint64_t hits = services.threads().cache_stats().hits.load();
  StatusOr<User> read = services.threads().GetUser(kReaderToken, created->id);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->version, 1);
  EXPECT_EQ(services.threads().cache_stats().hits.load(), hits + 1) << "not served from Redis";

  StatusOr<User> updated =
      services.threads().UpdateUser(kAdminToken, created->id, UserPatch{.full_name = "Changed"});
  ASSERT_TRUE(updated.ok());
  StatusOr<User> seen = Status::Internal("not run");
  OnFiberThread([&] { seen = services.ForFiberThread(1).GetUser(kReaderToken, created->id); });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->version, 2);
  EXPECT_EQ(seen->full_name, "Changed");
}

TEST_P(ServicesTest, AFiberThreadsStoreCallsRunOffItsThread) {
  Services services(store_, tokens_, clock_, Options());
  // Written straight to the store: the first read misses the cache.
  StatusOr<User> created = store_.Insert(Draft("offload"), 1);
  ASSERT_TRUE(created.ok());
  std::thread::id store_thread;
  std::thread::id fiber_thread;
  store_.SetFindByIdHook([&](std::int64_t) { store_thread = std::this_thread::get_id(); });
  StatusOr<User> read = Status::Internal("not run");
  OnFiberThread([&] {
    fiber_thread = std::this_thread::get_id();
    read = services.ForFiberThread(0).GetUser(kReaderToken, created->id);
  });
  store_.SetFindByIdHook(nullptr);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->id, created->id);
  EXPECT_NE(store_thread, std::thread::id{}) << "the read never reached the store";
  EXPECT_NE(store_thread, fiber_thread) << "the fiber thread called the store itself";
}

TEST_P(ServicesTest, NearCacheEntriesAreSharedSoNoRuntimeReadsAnOlderVersion) {
  ServicesOptions options = Options();
  options.near.entries = 1024;
  options.near.ttl = std::chrono::seconds(60);
  Services services(store_, tokens_, clock_, options);
  StatusOr<User> created = services.threads().CreateUser(kAdminToken, Draft("near"));
  ASSERT_TRUE(created.ok());
  StatusOr<User> warmed = Status::Internal("not run");
  OnFiberThread([&] { warmed = services.ForFiberThread(0).GetUser(kReaderToken, created->id); });
  ASSERT_TRUE(warmed.ok());
  ASSERT_TRUE(services.threads().DeleteUser(kAdminToken, created->id).ok());
  StatusOr<User> gone = User{};
  OnFiberThread([&] { gone = services.ForFiberThread(0).GetUser(kReaderToken, created->id); });
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
}

TEST_P(ServicesTest, ShutdownReachesEveryRuntime) {
  Services services(store_, tokens_, clock_, Options());
  UserService& fiber = services.ForFiberThread(0);
  services.BeginShutdown();
  EXPECT_EQ(services.threads().GetUser(kReaderToken, 1).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(fiber.GetUser(kReaderToken, 1).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(services.ForFiberThread(3).GetUser(kReaderToken, 1).status().code(),
            StatusCode::kUnavailable);
}

INSTANTIATE_TEST_SUITE_P(RedisPipes, ServicesTest, ::testing::Values(0, 2),
                         [](const ::testing::TestParamInfo<int>& param) {
                           return param.param == 0 ? std::string("pooled")
                                                   : std::string("pipelined");
                         });

}  // namespace
}  // namespace polycrud::server
