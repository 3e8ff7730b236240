// FiberScheduler: runs many synchronous clients on one thread, the way an
// event-driven load generator keeps many connections busy. Each client runs
// on a fiber (Boost.Context) with a stack of its own; whenever its code
// waits (clients::WaitReady, clients::SleepUntil, clients::CallDone) the
// scheduler, installed as the thread's clients::IoWaiter, switches to a
// fiber that can go on, and when none can it waits in one epoll_pwait2() for
// every socket, timer and cross-thread wake-up at once, or, once a client
// asked it to watch a completion source (gRPC's completion queue of this
// thread), waits in that source, with the sockets looked at before. So a call costs the
// client its library's work and a few system calls, not a thread's sleep and
// wake-up per call.
#pragma once

#include <boost/context/fiber.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <vector>

#include "clients/io_wait.h"

namespace polycrud::bench {

class FiberScheduler final : public clients::IoWaiter {
 public:
  FiberScheduler();
  ~FiberScheduler() override;
  FiberScheduler(const FiberScheduler&) = delete;
  FiberScheduler& operator=(const FiberScheduler&) = delete;

  // Adds a fiber that runs `body` once Run() starts.
  void Spawn(std::function<void()> body);
  // Runs the fibers on the calling thread until every one has returned;
  // rethrows the first exception one of them let escape.
  void Run();

  // clients::IoWaiter, for the fibers of this scheduler.
  std::error_code WaitFd(int fd, short events, clients::IoClock::time_point deadline) override;
  void SleepUntil(clients::IoClock::time_point when) override;
  void* CurrentTicket() override;
  void Park() override;
  void Unpark(void* ticket, std::atomic<bool>& done) override;
  void WatchSource(clients::CompletionSource* source) override;

 private:
  enum class Wait { kNone, kFd, kTimer, kPark };
  struct Task {
    boost::context::fiber fiber;  // the task, while it is suspended
    boost::context::fiber back;   // the scheduler, while the task runs
    std::function<void()> body;
    Wait wait = Wait::kNone;
    int fd = -1;
    bool fd_ready = false;
    bool pending_unpark = false;
    bool done = false;
    std::uint64_t timer_seq = 0;  // a timer of an earlier wait no longer counts
    // Its stack, and AddressSanitizer's fake stack while it is switched out.
    void* stack_bottom = nullptr;
    std::size_t stack_size = 0;
    void* fake_stack = nullptr;
  };
  class TaskStack;
  struct Timer {
    clients::IoClock::time_point when;
    std::uint64_t seq;
    Task* task;
    bool operator>(const Timer& other) const { return when > other.when; }
  };

  Task& Current();
  void Resume(Task* task);  // scheduler -> task
  void Suspend();           // task -> scheduler
  void MakeReady(Task* task);
  void AddTimer(Task* task, clients::IoClock::time_point when);
  // Waits for sockets, timers and wake-ups (not at all if a fiber is ready).
  void Poll();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Unpark from another thread
  std::vector<std::unique_ptr<Task>> tasks_;
  std::size_t live_ = 0;
  Task* current_ = nullptr;
  std::deque<Task*> ready_;
  std::vector<Task*> fd_waiter_;  // by descriptor
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  std::vector<clients::CompletionSource*> sources_;
  std::exception_ptr error_;
  // The scheduler's stack, for AddressSanitizer's stack switch annotations.
  const void* main_bottom_ = nullptr;
  std::size_t main_size_ = 0;
  void* main_fake_stack_ = nullptr;

  std::mutex remote_mutex_;
  std::vector<Task*> remote_;  // unparked from other threads
  bool sleeping_ = false;      // in epoll_pwait2 without a timeout of 0
};

}  // namespace polycrud::bench
