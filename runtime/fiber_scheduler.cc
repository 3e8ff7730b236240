#include "runtime/fiber_scheduler.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <cerrno>
#include <ctime>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

namespace polycrud::runtime {
namespace {

namespace ctx = boost::context;

// Room for a client library's deepest call (gSOAP's parser, gRPC's call
// set-up), with the red zones of AddressSanitizer builds. Pages are only
// committed when touched; a guard page below each stack traps an overflow.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kStackBytes = 1024 * 1024;
#else
constexpr std::size_t kStackBytes = 256 * 1024;
#endif

// AddressSanitizer is told of every switch of stacks (what Boost.Context
// does itself only in its ucontext flavour, which Debian does not build), so
// that it checks each fiber against its own stack.
void StartSwitch(void** fake_stack_save, const void* bottom, std::size_t size) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#else
  (void)fake_stack_save, (void)bottom, (void)size;
#endif
}
void FinishSwitch(void* fake_stack_save, const void** old_bottom, std::size_t* old_size) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(fake_stack_save, old_bottom, old_size);
#else
  (void)fake_stack_save, (void)old_bottom, (void)old_size;
#endif
}

// How long a wait in a completion source lasts before the sockets and
// cross-thread wake-ups are looked at again.
constexpr auto kSourceSlice = std::chrono::milliseconds(1);

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::system_category(), what);
}

}  // namespace

// A guarded stack whose bounds the task learns.
class FiberScheduler::TaskStack {
 public:
  explicit TaskStack(Task* task) : task_(task) {}
  ctx::stack_context allocate() {
    ctx::stack_context sc = inner_.allocate();
    task_->stack_size = sc.size;
    task_->stack_bottom = static_cast<char*>(sc.sp) - sc.size;
    return sc;
  }
  void deallocate(ctx::stack_context& sc) noexcept { inner_.deallocate(sc); }

 private:
  ctx::protected_fixedsize_stack inner_{kStackBytes};
  Task* task_;
};

FiberScheduler::FiberScheduler() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) ThrowErrno("epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) ThrowErrno("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) ThrowErrno("epoll_ctl");
}

FiberScheduler::~FiberScheduler() {
  // An Unpark of another thread may still hold the lock (it sets its flag
  // and writes the eventfd under it): wait for it to let go.
  { const std::lock_guard lock(remote_mutex_); }
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void FiberScheduler::Spawn(std::function<void()> body) {
  auto task = std::make_unique<Task>();
  task->body = std::move(body);
  Task* t = task.get();
  t->fiber = ctx::fiber(std::allocator_arg, TaskStack(t), [this, t](ctx::fiber&& back) {
    FinishSwitch(nullptr, &main_bottom_, &main_size_);
    t->back = std::move(back);
    try {
      t->body();
    } catch (...) {
      if (!error_) error_ = std::current_exception();
    }
    t->done = true;
    StartSwitch(nullptr, main_bottom_, main_size_);  // for good: its fake stack goes
    return std::move(t->back);
  });
  tasks_.push_back(std::move(task));
  ++live_;
  ready_.push_back(t);
}

void FiberScheduler::Run() {
  IoWaiter* const previous = ThreadIoWaiter();
  SetThreadIoWaiter(this);
  while (live_ > 0) {
    while (!ready_.empty()) {
      Task* t = ready_.front();
      ready_.pop_front();
      Resume(t);
      if (t->done) {
        --live_;
        ++finished_;
        t->body = nullptr;  // what it captured goes now; its stack went as it returned
      }
    }
    if (finished_ >= 64 && finished_ * 2 >= tasks_.size()) SweepFinished();
    if (live_ > 0) Poll();
  }
  SetThreadIoWaiter(previous);
  if (error_) std::rethrow_exception(error_);
}

FiberScheduler::Task& FiberScheduler::Current() {
  if (current_ == nullptr) throw std::logic_error("FiberScheduler: wait outside a fiber");
  return *current_;
}

void FiberScheduler::Resume(Task* task) {
  current_ = task;
  StartSwitch(&main_fake_stack_, task->stack_bottom, task->stack_size);
  task->fiber = std::move(task->fiber).resume();
  FinishSwitch(main_fake_stack_, nullptr, nullptr);
  current_ = nullptr;
}

void FiberScheduler::Suspend() {
  Task& t = Current();
  StartSwitch(&t.fake_stack, main_bottom_, main_size_);
  t.back = std::move(t.back).resume();
  FinishSwitch(t.fake_stack, &main_bottom_, &main_size_);
}

void FiberScheduler::MakeReady(Task* task) {
  task->wait = Wait::kNone;
  task->deadline = IoClock::time_point::max();
  ready_.push_back(task);
}

void FiberScheduler::AddTimer(Task* task, IoClock::time_point when) {
  task->deadline = when;
  // An entry due no later than `when` is there already: it will find this
  // deadline when it comes due.
  if (task->timer_refs > 0 && task->earliest_timer <= when) return;
  ++task->timer_refs;
  task->earliest_timer = std::min(task->earliest_timer, when);
  timers_.push(Timer{.when = when, .task = task});
}

void FiberScheduler::SweepFinished() {
  std::erase_if(tasks_, [this](const std::unique_ptr<Task>& t) {
    if (!t->done || t->timer_refs > 0 || t->remote_refs.load(std::memory_order_acquire) > 0) {
      return false;
    }
    --finished_;
    return true;
  });
}

std::error_code FiberScheduler::WaitFd(int fd, short events, IoClock::time_point deadline) {
  Task& t = Current();
  if (fd < 0) return std::make_error_code(std::errc::bad_file_descriptor);
  epoll_event ev{};
  ev.events = EPOLLONESHOT | ((events & POLLIN) != 0 ? EPOLLIN : 0u) |
              ((events & POLLOUT) != 0 ? EPOLLOUT : 0u);
  ev.data.fd = fd;
  // One-shot: armed again for each wait. A descriptor closed since its last
  // wait has left the set by itself, so a new one of the same number is added.
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0 &&
      (errno != ENOENT || ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)) {
    return {errno, std::system_category()};
  }
  if (static_cast<std::size_t>(fd) >= fd_waiter_.size()) {
    fd_waiter_.resize(static_cast<std::size_t>(fd) + 1, nullptr);
  }
  fd_waiter_[static_cast<std::size_t>(fd)] = &t;
  t.wait = Wait::kFd;
  t.fd = fd;
  t.fd_ready = false;
  if (deadline != IoClock::time_point::max()) AddTimer(&t, deadline);
  Suspend();
  if (t.fd_ready) return {};
  fd_waiter_[static_cast<std::size_t>(fd)] = nullptr;  // a late event finds no one
  return std::make_error_code(std::errc::timed_out);
}

void FiberScheduler::SleepUntil(IoClock::time_point when) {
  Task& t = Current();
  if (IoClock::now() >= when) return;
  t.wait = Wait::kTimer;
  AddTimer(&t, when);
  Suspend();
}

void* FiberScheduler::CurrentTicket() { return &Current(); }

void FiberScheduler::Park() {
  Task& t = Current();
  if (std::exchange(t.pending_unpark, false)) return;
  t.wait = Wait::kPark;
  Suspend();
}

void FiberScheduler::Unpark(void* ticket, std::atomic<bool>& done) {
  const std::lock_guard lock(remote_mutex_);
  Task* task = static_cast<Task*>(ticket);
  // Counted before `done` is set: once the task sees it, it may return, and
  // it must not be freed while remote_ names it.
  task->remote_refs.fetch_add(1, std::memory_order_relaxed);
  done.store(true, std::memory_order_release);
  remote_.push_back(task);
  if (sleeping_) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
    sleeping_ = false;  // one write wakes it
  }
}

void FiberScheduler::WatchSource(CompletionSource* source) {
  if (std::find(sources_.begin(), sources_.end(), source) == sources_.end()) {
    sources_.push_back(source);
  }
}

void FiberScheduler::Poll() {
  timespec timeout{};
  timespec* wait_for = &timeout;  // 0: a fiber is ready, or wake-ups are waiting
  std::vector<Task*> woken;
  bool would_wait = false;  // nothing to run until an event or a timer
  {
    const std::lock_guard lock(remote_mutex_);
    woken.swap(remote_);
    if (woken.empty() && ready_.empty()) {
      if (timers_.empty()) {
        wait_for = nullptr;
      } else {
        const auto left = std::max(timers_.top().when - IoClock::now(), IoClock::duration::zero());
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        timeout.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        timeout.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      }
      would_wait = wait_for == nullptr || timeout.tv_sec != 0 || timeout.tv_nsec != 0;
    }
    // With completion sources, the wait is in the first of them and the
    // sockets are only looked at (again within kSourceSlice); an Unpark then
    // waits for the slice's end instead of writing the eventfd.
    sleeping_ = would_wait && sources_.empty();
  }
  const bool wait_in_source = would_wait && !sources_.empty();
  timespec no_wait{};
  std::array<epoll_event, 256> events{};
  const int n = ::epoll_pwait2(epoll_fd_, events.data(), static_cast<int>(events.size()),
                               wait_in_source ? &no_wait : wait_for, nullptr);
  if (n < 0 && errno != EINTR) ThrowErrno("epoll_pwait2");
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    IoClock::time_point until = IoClock::time_point::min();  // only what has come
    if (i == 0 && wait_in_source && n == 0) {
      until = IoClock::now() + kSourceSlice;
      if (!timers_.empty()) until = std::min(until, timers_.top().when);
    }
    sources_[i]->Collect(until);
  }
  {
    const std::lock_guard lock(remote_mutex_);
    sleeping_ = false;
    woken.insert(woken.end(), remote_.begin(), remote_.end());
    remote_.clear();
  }
  for (int i = 0; i < n; ++i) {
    const int fd = events[static_cast<std::size_t>(i)].data.fd;
    if (fd == wake_fd_) {
      std::uint64_t count = 0;
      [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &count, sizeof count);
      continue;
    }
    Task* t = static_cast<std::size_t>(fd) < fd_waiter_.size()
                  ? fd_waiter_[static_cast<std::size_t>(fd)]
                  : nullptr;
    if (t == nullptr || t->wait != Wait::kFd || t->fd != fd) continue;
    fd_waiter_[static_cast<std::size_t>(fd)] = nullptr;
    t->fd_ready = true;
    MakeReady(t);
  }
  for (Task* t : woken) {
    t->remote_refs.fetch_sub(1, std::memory_order_release);
    if (t->done) continue;
    if (t->wait == Wait::kPark) {
      MakeReady(t);
    } else {
      t->pending_unpark = true;
    }
  }
  const IoClock::time_point now = IoClock::now();
  while (!timers_.empty() && timers_.top().when <= now) {
    const Timer timer = timers_.top();
    timers_.pop();
    Task* t = timer.task;
    --t->timer_refs;
    t->earliest_timer = IoClock::time_point::max();  // unknown now: the next AddTimer queues
    const bool timed = t->wait == Wait::kFd || t->wait == Wait::kTimer;
    if (!timed || t->deadline == IoClock::time_point::max()) continue;  // lapsed
    if (t->deadline > now) {
      AddTimer(t, t->deadline);  // due later now
      continue;
    }
    if (t->wait == Wait::kFd) fd_waiter_[static_cast<std::size_t>(t->fd)] = nullptr;
    MakeReady(t);
  }
}

}  // namespace polycrud::runtime
