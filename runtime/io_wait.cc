#include "runtime/io_wait.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <thread>

namespace polycrud::runtime {
std::error_code WaitReady(int fd, short events, IoClock::time_point deadline) {
  if (ThreadIoWaiter() != nullptr) return ThreadIoWaiter()->WaitFd(fd, events, deadline);
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - IoClock::now());
    if (left.count() <= 0) return std::make_error_code(std::errc::timed_out);
    pollfd p{.fd = fd, .events = events, .revents = 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1 << 30)));
    if (n > 0) return {};
    if (n < 0 && errno != EINTR) return {errno, std::system_category()};
  }
}

void SleepUntil(IoClock::time_point when) {
  if (IoWaiter* waiter = ThreadIoWaiter()) {
    waiter->SleepUntil(when);
  } else {
    std::this_thread::sleep_until(when);
  }
}

std::error_code SendAll(int fd, const void* data, std::size_t size, IoClock::time_point deadline) {
  const char* next = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::send(fd, next, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      next += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return {errno, std::system_category()};
    if (const std::error_code ec = WaitReady(fd, POLLOUT, deadline)) return ec;
  }
  return {};
}

std::error_code RecvSome(int fd, void* buffer, std::size_t size, IoClock::time_point deadline,
                         bool wait_first, std::size_t& received) {
  received = 0;
  if (wait_first) {
    if (const std::error_code ec = WaitReady(fd, POLLIN, deadline)) return ec;
  }
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, size, MSG_DONTWAIT);
    if (n >= 0) {
      received = static_cast<std::size_t>(n);
      return {};
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return {errno, std::system_category()};
    if (const std::error_code ec = WaitReady(fd, POLLIN, deadline)) return ec;
  }
}

}  // namespace polycrud::runtime
