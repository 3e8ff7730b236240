// How a client waits. Every ProtocolClient is synchronous: a call returns
// when its answer is in. While it waits (for its socket to become readable
// or writable, or for a call whose completion the thread must collect from a
// queue, as gRPC's completion queues deliver them) it asks the thread's
// IoWaiter. By default there is none and the
// thread blocks (poll(), a condition variable). A scheduler that runs many
// clients on one thread, each on a stack of its own (polycrud-bench's
// fibers), installs itself as the thread's IoWaiter and switches to another
// client instead, so one thread keeps many connections busy the way an
// event-driven tool does, with the clients' code unchanged.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <system_error>

namespace polycrud::clients {

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

// Waits until `fd` is ready for `events` or `deadline` passes (errc::timed_out).
// POLLERR and POLLHUP count as ready: the next read or write reports them.
std::error_code WaitReady(int fd, short events, IoClock::time_point deadline);
// Sleeps until `when`.
void SleepUntil(IoClock::time_point when);

// Sends all of data[0, size) on the socket `fd` without blocking in send(),
// waiting (WaitReady) while its buffer is full; errc::timed_out at `deadline`.
std::error_code SendAll(int fd, const void* data, std::size_t size, IoClock::time_point deadline);
// Receives into buffer[0, size) what has arrived, waiting (WaitReady) until
// something has; `received` 0 means the peer closed the stream. `wait_first`
// waits before the first try: right after a request, whose answer cannot
// have come yet, a try would only fail.
std::error_code RecvSome(int fd, void* buffer, std::size_t size, IoClock::time_point deadline,
                         bool wait_first, std::size_t& received);

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

}  // namespace polycrud::clients
