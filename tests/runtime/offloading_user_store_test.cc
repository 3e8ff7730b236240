// OffloadingUserStore: a fiber's store call runs on a worker thread while the
// fiber's thread goes on with its other fibers; other threads call through.
#include "runtime/offloading_user_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <thread>

#include "core/testing/memory_user_store.h"
#include "runtime/fiber_scheduler.h"
#include "runtime/io_wait.h"

namespace polycrud::runtime {
namespace {

using namespace std::chrono_literals;

UserDraft Draft(const std::string& name) {
  return {.username = name, .email = name + "@example.com", .full_name = "A " + name};
}

TEST(OffloadingUserStoreTest, AFibersCallRunsOnAWorkerWhileItsThreadRunsOtherFibers) {
  testing::MemoryUserStore inner;
  const User user = *inner.Insert(Draft("ada"), 1);
  OffloadingUserStore store(inner, /*workers=*/2, /*max_queued=*/16);
  std::atomic<bool> released{false};
  std::thread::id read_on;
  // The read blocks until another fiber of the same thread releases it: were
  // it run on the fiber's thread, that fiber could never run.
  inner.SetFindByIdHook([&](std::int64_t) {
    read_on = std::this_thread::get_id();
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!released.load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
  });
  StatusOr<std::optional<User>> found = Status::Internal("not run");
  std::thread::id fiber_thread;
  runtime::FiberScheduler scheduler;
  scheduler.Spawn([&] {
    fiber_thread = std::this_thread::get_id();
    found = store.FindById(user.id);
  });
  scheduler.Spawn([&] {
    runtime::SleepUntil(runtime::IoClock::now() + 20ms);
    released.store(true);
  });
  const auto start = std::chrono::steady_clock::now();
  scheduler.Run();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s) << "the read blocked its thread";
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->username, "ada");
  EXPECT_NE(read_on, fiber_thread);
  EXPECT_EQ(store.offloaded(), 1u);
}

// The server gives this store only to the fiber threads' services; a plain
// thread that calls it anyway gets the same answers, from a worker.
TEST(OffloadingUserStoreTest, OffAFiberACallStillRunsOnAWorkerAndItsThreadWaits) {
  testing::MemoryUserStore inner;
  OffloadingUserStore store(inner, /*workers=*/2, /*max_queued=*/16);
  std::thread::id read_on;
  inner.SetFindByIdHook([&](std::int64_t) { read_on = std::this_thread::get_id(); });
  const StatusOr<User> created = store.Insert(Draft("grace"), 1);
  ASSERT_TRUE(created.ok());
  const StatusOr<std::optional<User>> found = store.FindById(created->id);
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->username, "grace");
  EXPECT_NE(read_on, std::this_thread::get_id());
  EXPECT_EQ(store.offloaded(), 2u);
}

TEST(OffloadingUserStoreTest, BeyondTheQueueACallIsResourceExhausted) {
  testing::MemoryUserStore inner;
  OffloadingUserStore store(inner, /*workers=*/1, /*max_queued=*/0);
  std::atomic<bool> released{false};
  std::atomic<int> entered{0};
  inner.SetFindByIdHook([&](std::int64_t) {
    entered.fetch_add(1);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!released.load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
  });
  // One call holds the only worker and none may wait: the next is refused.
  // The worker may not be idle yet when the pool is new (its first call is
  // refused too), so the holding call is tried until it gets in.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  std::thread running([&] {
    while (entered.load() == 0 && std::chrono::steady_clock::now() < deadline) {
      if (!store.FindById(1).ok()) std::this_thread::sleep_for(1ms);
    }
  });
  while (entered.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  const StatusOr<std::optional<User>> refused = store.FindById(2);
  released.store(true);
  running.join();
  ASSERT_EQ(entered.load(), 1) << "no call ever reached the worker";
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
}

// A store that throws must still wake the fiber waiting for it.
TEST(OffloadingUserStoreTest, AnExceptionOfTheStoreBecomesAnInternalError) {
  testing::MemoryUserStore inner;
  OffloadingUserStore store(inner, /*workers=*/1, /*max_queued=*/16);
  inner.SetFindByIdHook([](std::int64_t) { throw std::runtime_error("driver exploded"); });
  StatusOr<std::optional<User>> found = std::optional<User>{};
  runtime::FiberScheduler scheduler;
  scheduler.Spawn([&] { found = store.FindById(1); });
  scheduler.Run();
  inner.SetFindByIdHook(nullptr);
  EXPECT_EQ(found.status().code(), StatusCode::kInternal);
}

TEST(OffloadingUserStoreTest, ErrorsOfTheInnerStoreReachTheFiberUnchanged) {
  testing::MemoryUserStore inner;
  OffloadingUserStore store(inner, /*workers=*/1, /*max_queued=*/16);
  StatusOr<User> updated = User{};
  Status ping;
  runtime::FiberScheduler scheduler;
  scheduler.Spawn([&] {
    updated = store.Update(424242, UserPatch{.full_name = "x"}, 2);
    ping = store.Ping();
  });
  scheduler.Run();
  EXPECT_EQ(updated.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(ping.ok());
  EXPECT_EQ(store.offloaded(), 2u);
}

}  // namespace
}  // namespace polycrud::runtime
