#include "core/io_waiter.h"

namespace polycrud {
namespace {

thread_local IoWaiter* thread_waiter = nullptr;

}  // namespace

IoWaiter* ThreadIoWaiter() { return thread_waiter; }
void SetThreadIoWaiter(IoWaiter* waiter) { thread_waiter = waiter; }

CallDone::CallDone(CompletionSource* source) : waiter_(thread_waiter), source_(source) {
  if (waiter_ != nullptr) ticket_ = waiter_->CurrentTicket();
}

void CallDone::Notify() {
  if (waiter_ != nullptr) {
    waiter_->Unpark(ticket_, done_);  // *this may be gone once it returns
    return;
  }
  // Notified under the lock: the waiter may destroy *this once it has it.
  const std::lock_guard lock(mutex_);
  done_.store(true, std::memory_order_release);
  cv_.notify_one();
}

void CallDone::Wait() {
  if (waiter_ != nullptr) {
    if (source_ != nullptr) waiter_->WatchSource(source_);
    while (!done_.load(std::memory_order_acquire)) waiter_->Park();
    return;
  }
  if (source_ != nullptr) {
    while (!done_.load(std::memory_order_acquire)) source_->Collect(IoClock::time_point::max());
    return;
  }
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return done_.load(std::memory_order_acquire); });
}

}  // namespace polycrud
