// WorkerPool: tasks run on the workers, at most `threads` at once; beyond
// the busy workers at most `max_queued` wait and the rest are refused; Stop
// runs what is queued, then refuses.
#include "runtime/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace polycrud::runtime {
namespace {

using std::chrono_literals::operator""s;

// A gate the tasks wait at until the test opens it (at the latest when it
// goes out of scope, so a failed assertion does not leave workers waiting:
// declare it after the pool).
class Gate {
 public:
  Gate() = default;
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  ~Gate() { Open(); }

  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // True once `n` tasks wait at the gate (false after 10 s).
  bool AwaitWaiting(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return waiting_ >= n; });
  }
  int waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

TEST(WorkerPoolTest, RunsEveryTaskOnTheWorkers) {
  std::atomic<int> ran{0};
  std::mutex mu;
  std::vector<std::thread::id> ids;
  {
    WorkerPool pool(4, 100);
    for (int i = 0; i < 1000; ++i) {
      // Spin until accepted: 1000 tasks exceed the queue bound on purpose.
      while (!pool.Submit([&] {
        {
          std::lock_guard<std::mutex> lock(mu);
          ids.push_back(std::this_thread::get_id());
        }
        ran.fetch_add(1);
      })) {
        std::this_thread::yield();
      }
    }
    pool.Stop();
  }
  EXPECT_EQ(ran.load(), 1000);
  for (const auto& id : ids) EXPECT_NE(id, std::this_thread::get_id());
}

TEST(WorkerPoolTest, AllWorkersRunAtOnceThenTheQueueIsBounded) {
  std::atomic<int> ran{0};
  WorkerPool pool(3, 2);
  Gate gate;
  auto task = [&] {
    gate.Wait();
    ran.fetch_add(1);
  };
  // One at a time, each seen running before the next: each of the three
  // runs on a worker of its own.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pool.Submit(task)) << i;
    ASSERT_TRUE(gate.AwaitWaiting(i + 1)) << i;
  }
  EXPECT_TRUE(pool.Submit(task));  // queued
  EXPECT_TRUE(pool.Submit(task));  // queued: the bound is reached
  EXPECT_FALSE(pool.Submit(task));
  EXPECT_EQ(gate.waiting(), 3);  // the queued ones wait for a worker
  gate.Open();
  pool.Stop();
  EXPECT_EQ(ran.load(), 5);
}

TEST(WorkerPoolTest, StopRunsQueuedTasksThenRefuses) {
  std::atomic<int> ran{0};
  WorkerPool pool(1, 10);
  Gate gate;
  ASSERT_TRUE(pool.Submit([&] {
    gate.Wait();
    ran.fetch_add(1);
  }));
  ASSERT_TRUE(gate.AwaitWaiting(1));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool.Submit([&] { ran.fetch_add(1); }));
  std::thread stopper([&] { pool.Stop(); });
  gate.Open();
  stopper.join();
  EXPECT_EQ(ran.load(), 6);
  EXPECT_FALSE(pool.Submit([&] { ran.fetch_add(1); }));
  pool.Stop();  // idempotent
  EXPECT_EQ(ran.load(), 6);
}

// Regression: an exception leaving a task ended the whole process.
TEST(WorkerPoolTest, ATaskThatThrowsIsCountedAndThePoolGoesOn) {
  WorkerPool pool(1, 10);
  ASSERT_TRUE(pool.Submit([] { throw std::runtime_error("task failed"); }));
  std::atomic<bool> ran{false};
  ASSERT_TRUE(pool.Submit([&] { ran.store(true); }));
  pool.Stop();
  EXPECT_TRUE(ran.load());
  EXPECT_EQ(pool.failed_tasks(), 1u);
}

TEST(WorkerPoolTest, IdleWorkersAreReusedAfterTheyFinish) {
  // Sequential calls, each waited for: every one finds an idle worker.
  WorkerPool pool(8, 1);
  for (int i = 0; i < 200; ++i) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    ASSERT_TRUE(pool.Submit([&] {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
      cv.notify_one();
    })) << i;
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return done; })) << i;
  }
}

}  // namespace
}  // namespace polycrud::runtime
