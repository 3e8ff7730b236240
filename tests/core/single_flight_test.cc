// SingleFlight: concurrent loads of one key run once and every caller gets
// the result, whether the callers are threads or fibers of one thread.
#include "core/single_flight.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime/fiber_scheduler.h"
#include "runtime/io_wait.h"

namespace polycrud {
namespace {

using namespace std::chrono_literals;

TEST(SingleFlightTest, ConcurrentThreadsShareOneLoad) {
  SingleFlight<int, int> flight;
  std::atomic<int> loads{0};
  std::atomic<bool> release{false};
  std::vector<int> results(8, 0);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = flight.Do(7, [&] {
        loads.fetch_add(1);
        while (!release.load()) std::this_thread::sleep_for(1ms);
        return 42;
      });
    });
  }
  std::this_thread::sleep_for(50ms);  // every thread has joined the flight
  release.store(true);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(loads.load(), 1);
  for (const int r : results) EXPECT_EQ(r, 42);
}

// Regression: a load that threw never ended its flight, so every later
// caller of the key waited forever.
TEST(SingleFlightTest, ALoadThatThrowsEndsItsFlightForEveryCaller) {
  SingleFlight<int, int> flight;
  std::atomic<bool> release{false};
  std::atomic<int> threw{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      try {
        flight.Do(7, [&]() -> int {
          while (!release.load()) std::this_thread::sleep_for(1ms);
          throw std::runtime_error("load failed");
        });
      } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "load failed") threw.fetch_add(1);
      }
    });
  }
  std::this_thread::sleep_for(50ms);  // every thread has joined the flight
  release.store(true);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(threw.load(), 4);
  EXPECT_EQ(flight.Do(7, [] { return 5; }), 5) << "the key's flight never ended";
}

TEST(SingleFlightTest, FibersOfOneThreadShareOneLoadWithoutBlockingTheThread) {
  SingleFlight<int, int> flight;
  int loads = 0;
  std::vector<int> results(6, 0);
  std::vector<bool> shared(6, false);
  runtime::FiberScheduler scheduler;
  for (std::size_t i = 0; i < results.size(); ++i) {
    scheduler.Spawn([&, i] {
      bool was_shared = false;
      results[i] = flight.Do(
          7,
          [&] {
            ++loads;
            // The leader waits on its fiber: were a follower to block the
            // thread, the leader could never finish.
            runtime::SleepUntil(runtime::IoClock::now() + 20ms);
            return 42;
          },
          &was_shared);
      shared[i] = was_shared;
    });
  }
  const auto start = std::chrono::steady_clock::now();
  scheduler.Run();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(loads, 1);
  for (const int r : results) EXPECT_EQ(r, 42);
  EXPECT_EQ(std::count(shared.begin(), shared.end(), true), 5);
}

}  // namespace
}  // namespace polycrud
