// How a thread waits for what another thread (or its own event loop) will
// deliver. By default a thread blocks (poll(), a condition variable). A
// scheduler that runs many callers on one thread, each on a stack of its
// own (runtime::FiberScheduler: polycrud-bench's clients, the fiber Thrift
// model's connections), installs itself as the thread's IoWaiter and
// switches to another caller instead, so one thread keeps many connections
// busy the way an event-driven server does, with the callers' code
// unchanged. The core waits through it too (SingleFlight), so its code runs
// unchanged on such a thread. Standard library only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <system_error>

namespace polycrud {

using IoClock = std::chrono::steady_clock;

// Completions that only a thread polling for them collects (a gRPC
// completion queue: the thread that asks it for the next event also does the
// call's network work). Collect waits until at least one came or `deadline`
// passed, and signals (CallDone::Notify) each one that came.
class CompletionSource {
 public:
  virtual ~CompletionSource() = default;
  virtual void Collect(IoClock::time_point deadline) = 0;
};

class IoWaiter {
 public:
  virtual ~IoWaiter() = default;
  // Returns when `fd` may be ready for `events` (POLLIN, POLLOUT) or when
  // `deadline` has passed: errc::timed_out then. May return early (callers
  // retry their non-blocking operation and wait again).
  virtual std::error_code WaitFd(int fd, short events, IoClock::time_point deadline) = 0;
  virtual void SleepUntil(IoClock::time_point when) = 0;
  // Park() suspends the caller until Unpark(ticket, done) with the ticket
  // CurrentTicket() gave before. Unpark runs on any thread, possibly before
  // Park (which then returns at once): it sets `done` and wakes the ticket's
  // owner, and touches neither the waiter nor `done` once `done` may be
  // seen. Park may return spuriously: callers loop until `done`.
  virtual void* CurrentTicket() = 0;
  virtual void Park() = 0;
  virtual void Unpark(void* ticket, std::atomic<bool>& done) = 0;
  // From now on the waiter collects from `source` (on this thread) where it
  // would otherwise sleep. Repeating it for the same source does nothing;
  // the source outlives the waiter's use of the thread.
  virtual void WatchSource(CompletionSource* source) = 0;
};

// The calling thread's waiter (nullptr: block the thread).
IoWaiter* ThreadIoWaiter();
void SetThreadIoWaiter(IoWaiter* waiter);

// A call completed: Wait() returns once Notify() ran. Made and waited on by
// one thread; Notify() from any, or, with a `source`, from that source's
// Collect on this thread, which Wait() then polls itself (or has the
// thread's waiter poll).
class CallDone {
 public:
  explicit CallDone(CompletionSource* source = nullptr);
  CallDone(const CallDone&) = delete;
  CallDone& operator=(const CallDone&) = delete;
  void Notify();
  void Wait();

 private:
  IoWaiter* waiter_;
  CompletionSource* source_;
  void* ticket_ = nullptr;
  std::atomic<bool> done_{false};
  std::mutex mutex_;  // only without a waiter
  std::condition_variable cv_;
};

}  // namespace polycrud
