// WorkerPool: see worker_pool.h.
#include "runtime/worker_pool.h"

#include <utility>

namespace polycrud::runtime {

WorkerPool::WorkerPool(int threads, std::size_t max_queued) : max_queued_(max_queued) {
  const auto count = static_cast<std::size_t>(threads);
  workers_.reserve(count);
  idle_.reserve(count);
  threads_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    workers_.push_back(std::make_unique<Worker>());
    Worker* worker = workers_.back().get();
    threads_.emplace_back([this, worker] { Work(*worker); });
  }
}

WorkerPool::~WorkerPool() { Stop(); }

bool WorkerPool::Submit(std::function<void()> task) {
  Worker* worker = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    if (idle_.empty()) {
      if (tasks_.size() >= max_queued_) return false;
      tasks_.push_back(std::move(task));
      return true;
    }
    worker = idle_.back();
    idle_.pop_back();
    worker->task = std::move(task);
  }
  // Signalled outside the lock, so the woken worker need not wait for it.
  worker->wake.notify_one();
  return true;
}

void WorkerPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    idle_.clear();
  }
  // An idle worker woken with no task sees `stopping_` and exits; busy ones
  // drain the queue first.
  for (const auto& worker : workers_) worker->wake.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void WorkerPool::Work(Worker& self) {
  std::function<void()> task;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Queued tasks still run when stopping: each one owns a call that
      // must be finished.
      if (tasks_.empty() && !stopping_) {
        idle_.push_back(&self);
        self.wake.wait(lock, [&] { return self.task != nullptr || stopping_; });
      }
      if (self.task) {
        task = std::move(self.task);
        self.task = nullptr;
      } else if (!tasks_.empty()) {
        task = std::move(tasks_.front());
        tasks_.pop_front();
      } else {
        return;  // stopping, and nothing is left to run
      }
    }
    // A task that throws must not end the process (an exception leaving a
    // thread's function calls std::terminate): it is counted and dropped.
    // Tasks that owe a caller an answer catch their own exceptions.
    try {
      task();
    } catch (...) {
      failed_tasks_.fetch_add(1, std::memory_order_relaxed);
    }
    task = nullptr;  // the call's captures are released before the next wait
  }
}

}  // namespace polycrud::runtime
