// WorkerPool: a fixed set of threads that run blocking calls (MySQL and Redis
// round trips) for threads that must not block: gRPC's callback threads, and
// the fiber threads of the Thrift face (OffloadingUserStore). The queue is
// bounded so overload is refused, not piled up.
//
// A task submitted while a worker is idle is handed straight to that worker
// (the one that went idle last, whose stack and caches are still warm) and
// wakes only it: one wake-up per call, no thundering herd and no contention
// for a shared lock on the way. Tasks queue only while every worker is busy;
// a worker that finishes takes the next queued task before going idle.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace polycrud::runtime {

class WorkerPool {
 public:
  // Starts `threads` workers; at most `max_queued` tasks wait for one.
  WorkerPool(int threads, std::size_t max_queued);
  // Same as Stop().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `task` on an idle worker, or queues it; false (and `task` not run)
  // if every worker is busy and `max_queued` tasks already wait, or if the
  // pool is stopping. Thread-safe.
  [[nodiscard]] bool Submit(std::function<void()> task);
  // Runs every task already queued, then joins the workers. Idempotent.
  void Stop();
  // Tasks that ended with an exception (caught, so the process lives on).
  std::uint64_t failed_tasks() const { return failed_tasks_.load(std::memory_order_relaxed); }

 private:
  // One worker's hand-off slot: while the worker is idle (on `idle_`),
  // Submit writes `task` and signals `wake`. (A condition variable, not a
  // std::binary_semaphore: libstdc++'s semaphore yields the CPU a dozen times
  // before it sleeps, which on a busy machine costs more context switches
  // than it saves.)
  struct Worker {
    std::condition_variable wake;
    std::function<void()> task;  // guarded by mu_
  };

  void Work(Worker& self);

  const std::size_t max_queued_;
  std::atomic<std::uint64_t> failed_tasks_{0};
  std::mutex mu_;
  std::deque<std::function<void()>> tasks_;  // only while no worker is idle
  std::vector<Worker*> idle_;                // LIFO: the last to go idle is woken first
  bool stopping_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
};

}  // namespace polycrud::runtime
