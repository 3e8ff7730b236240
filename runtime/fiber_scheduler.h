// FiberScheduler: runs many synchronous clients on one thread, the way an
// event-driven load generator keeps many connections busy. Each client runs
// on a fiber (Boost.Context) with a stack of its own; whenever its code
// waits (WaitReady, SleepUntil, CallDone) the
// scheduler, installed as the thread's IoWaiter, switches to a
// fiber that can go on, and when none can it waits in one epoll_pwait2() for
// every socket, timer and cross-thread wake-up at once, or, once a client
// asked it to watch a completion source (gRPC's completion queue of this
// thread), waits in that source, with the sockets looked at before. So a call costs the
// client its library's work and a few system calls, not a thread's sleep and
// wake-up per call.
#pragma once

#include <atomic>
#include <boost/context/fiber.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <vector>

#include "runtime/io_wait.h"

namespace polycrud::runtime {

class FiberScheduler final : public IoWaiter {
 public:
  FiberScheduler();
  ~FiberScheduler() override;
  FiberScheduler(const FiberScheduler&) = delete;
  FiberScheduler& operator=(const FiberScheduler&) = delete;

  // Adds a fiber that runs `body` once Run() starts, or soon if it runs
  // (from one of its fibers). A fiber that returned gives its stack back at
  // once, so a scheduler may run any number of short-lived fibers.
  void Spawn(std::function<void()> body);
  // Runs the fibers on the calling thread until every one has returned;
  // rethrows the first exception one of them let escape.
  void Run();

  // Fibers held (running, waiting, or returned and not freed yet) and timer
  // entries queued; for tests.
  std::size_t tasks_held() const { return tasks_.size(); }
  std::size_t timers_queued() const { return timers_.size(); }

  // IoWaiter, for the fibers of this scheduler.
  std::error_code WaitFd(int fd, short events, IoClock::time_point deadline) override;
  void SleepUntil(IoClock::time_point when) override;
  void* CurrentTicket() override;
  void Park() override;
  void Unpark(void* ticket, std::atomic<bool>& done) override;
  void WatchSource(CompletionSource* source) override;

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
    // The current wait's deadline (max: none). Timers are lazy: at most one
    // entry per task is due no earlier than what it waits for; an entry that
    // comes due finds the task's current deadline and fires, queues itself
    // again for a later one, or lapses. So a connection that waits with a
    // long idle timeout before every request keeps one timer, not one per
    // request.
    IoClock::time_point deadline = IoClock::time_point::max();
    // Timers and cross-thread wake-ups that still name the task: a task that
    // returned is freed only once none does.
    int timer_refs = 0;
    IoClock::time_point earliest_timer = IoClock::time_point::max();  // of its entries
    std::atomic<int> remote_refs{0};
    // Its stack, and AddressSanitizer's fake stack while it is switched out.
    void* stack_bottom = nullptr;
    std::size_t stack_size = 0;
    void* fake_stack = nullptr;
  };
  class TaskStack;
  struct Timer {
    IoClock::time_point when;
    Task* task;
    bool operator>(const Timer& other) const { return when > other.when; }
  };

  Task& Current();
  void Resume(Task* task);  // scheduler -> task
  void Suspend();           // task -> scheduler
  void MakeReady(Task* task);
  void AddTimer(Task* task, IoClock::time_point when);
  // Frees the tasks that returned and that nothing names any more.
  void SweepFinished();
  // Waits for sockets, timers and wake-ups (not at all if a fiber is ready).
  void Poll();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Unpark from another thread
  std::vector<std::unique_ptr<Task>> tasks_;
  std::size_t live_ = 0;
  std::size_t finished_ = 0;  // returned, not freed yet
  Task* current_ = nullptr;
  std::deque<Task*> ready_;
  std::vector<Task*> fd_waiter_;  // by descriptor
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  std::vector<CompletionSource*> sources_;
  std::exception_ptr error_;
  // The scheduler's stack, for AddressSanitizer's stack switch annotations.
  const void* main_bottom_ = nullptr;
  std::size_t main_size_ = 0;
  void* main_fake_stack_ = nullptr;

  std::mutex remote_mutex_;
  std::vector<Task*> remote_;  // unparked from other threads
  bool sleeping_ = false;      // in epoll_pwait2 without a timeout of 0
};

}  // namespace polycrud::runtime
