// WorkerPool: see worker_pool.h.
#include "adapters/grpc/worker_pool.h"

#include <utility>

namespace polycrud::grpc_adapter {

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
  // Released outside the lock, so the woken worker never waits for it.
  worker->wake.release();
  return true;
}

void WorkerPool::Stop() {
  std::vector<Worker*> idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    idle.swap(idle_);
  }
  // An idle worker woken with no task sees `stopping_` and exits; busy ones
  // drain the queue first.
  for (Worker* worker : idle) worker->wake.release();
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
      if (!tasks_.empty()) {
        task = std::move(tasks_.front());
        tasks_.pop_front();
      } else if (stopping_) {
        return;
      } else {
        idle_.push_back(&self);
        lock.unlock();
        self.wake.acquire();
        // Woken by Submit with a task (its write is visible through the
        // semaphore, and nobody else touches the slot until this worker is
        // idle again), or by Stop without one: then drain or exit.
        if (!self.task) continue;
        task = std::move(self.task);
        self.task = nullptr;
      }
    }
    task();
    task = nullptr;  // the call's captures are released before the next wait
  }
}

}  // namespace polycrud::grpc_adapter
