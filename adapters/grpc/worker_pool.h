// WorkerPool: a fixed set of threads that run the gRPC face's blocking calls
// (MySQL and Redis round trips) off gRPC's own callback threads, which must
// never block. The queue is bounded so overload is refused, not piled up.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace polycrud::grpc_adapter {

class WorkerPool {
 public:
  // Starts `threads` workers; at most `max_queued` tasks wait for one.
  WorkerPool(int threads, std::size_t max_queued);
  // Same as Stop().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false (and `task` not run) if the queue is full or the
  // pool is stopping. Thread-safe.
  [[nodiscard]] bool Submit(std::function<void()> task);
  // Runs every task already queued, then joins the workers. Idempotent.
  void Stop();

 private:
  void Work();

  const std::size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace polycrud::grpc_adapter
