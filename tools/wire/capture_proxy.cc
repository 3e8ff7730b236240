#include "tools/wire/capture_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace polycrud::wire {
namespace {

using Clock = std::chrono::steady_clock;

// Reading stops while this much waits to be written to the other side.
constexpr std::size_t kMaxPending = std::size_t{256} << 10;
// Poll rounds at most: each moves bytes, sees an end of stream, or waits.
constexpr int kMaxRounds = 1'000'000;

void Close(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Milliseconds left until `deadline` (0 once it passed), for poll().
int MillisLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > 60'000 ? 60'000 : static_cast<int>(left);
}

std::string Endpoint(const std::string& host, int port) {
  return host + ":" + std::to_string(port);
}

// A connected non-blocking socket to host:port; throws std::runtime_error.
int ConnectTo(const std::string& host, int port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("cannot resolve " + host + ": " + ::gai_strerror(rc));
  }
  std::string why = "no address";
  int connected = -1;
  for (addrinfo* a = found; a != nullptr && connected < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int error = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      error = errno;
      if (error == EINPROGRESS) {
        pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
        const int ready = ::poll(&p, 1, MillisLeft(deadline));
        if (ready <= 0) {
          error = ready == 0 ? ETIMEDOUT : errno;
        } else {
          socklen_t size = sizeof error;
          if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
        }
      }
    }
    if (error != 0) {
      why = error == ETIMEDOUT ? "timed out" : std::strerror(error);
      Close(fd);
      continue;
    }
    connected = fd;
  }
  ::freeaddrinfo(found);
  if (connected < 0) {
    throw std::runtime_error("cannot connect to " + Endpoint(host, port) + ": " + why);
  }
  const int one = 1;
  ::setsockopt(connected, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return connected;
}

// One direction of the copy.
struct Flow {
  Direction direction;
  int from;
  int to;
  std::string pending;  // read from `from`, not yet written to `to`
  std::size_t written = 0;
  std::size_t recorded = 0;
  bool ended = false;  // `from` reached its end of stream (or failed)
  bool shut = false;   // `to` was told so (shutdown SHUT_WR)

  bool Reading() const { return !ended && pending.size() - written < kMaxPending; }
  bool Writing() const { return written < pending.size(); }
  bool Done() const { return ended && !Writing(); }
};

}  // namespace

std::string Capture::Bytes(Direction direction) const {
  std::string out;
  for (const Chunk& chunk : chunks) {
    if (chunk.direction == direction) out += chunk.bytes;
  }
  return out;
}

CaptureProxy::CaptureProxy(const std::string& host, int port, std::chrono::milliseconds timeout)
    : deadline_(Clock::now() + timeout) {
  upstream_ = ConnectTo(host, port, deadline_);
  try {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t size = sizeof address;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 1) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
      throw std::runtime_error(std::string("cannot listen on 127.0.0.1: ") + std::strerror(errno));
    }
    port_ = ntohs(address.sin_port);
    std::array<int, 2> wake{};
    if (::pipe2(wake.data(), O_CLOEXEC | O_NONBLOCK) != 0) {
      throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    }
    wake_read_ = wake[0];
    wake_write_ = wake[1];
    thread_ = std::thread([this] { Run(); });
  } catch (...) {
    Close(upstream_);
    Close(listener_);
    Close(wake_read_);
    Close(wake_write_);
    throw;
  }
}

CaptureProxy::~CaptureProxy() {
  if (!stopped_) Stop();
}

Capture CaptureProxy::Stop() {
  if (!stopped_) {
    stopped_ = true;
    const char byte = 0;
    // The pipe is empty and non-blocking: a failed write means the thread has
    // ended already.
    [[maybe_unused]] const ssize_t written = ::write(wake_write_, &byte, 1);
    if (thread_.joinable()) thread_.join();
    Close(upstream_);
    Close(listener_);
    Close(wake_read_);
    Close(wake_write_);
  }
  return std::move(capture_);
}

void CaptureProxy::Run() {
  int client = -1;
  // Waits for the one connection; each round accepts, sees the stop, or
  // waits until the deadline.
  for (int round = 0; round < kMaxRounds && client < 0; ++round) {
    std::array<pollfd, 2> fds = {pollfd{.fd = listener_, .events = POLLIN, .revents = 0},
                                 pollfd{.fd = wake_read_, .events = POLLIN, .revents = 0}};
    const int timeout = MillisLeft(deadline_);
    if (timeout == 0) {
      capture_.error = "no client connected before the deadline";
      return;
    }
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
      capture_.error = std::string("poll: ") + std::strerror(errno);
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    client = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0 && errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
      capture_.error = std::string("accept: ") + std::strerror(errno);
      return;
    }
  }
  if (client < 0) return;
  // Exactly one connection: any other is refused from now on.
  ::close(listener_);
  listener_ = -1;
  capture_.accepted = true;
  const int one = 1;
  ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  try {
    Forward(client);
  } catch (const std::exception& e) {
    capture_.error = e.what();
  }
  ::close(client);
}

void CaptureProxy::Forward(int client) {
  std::array<Flow, 2> flows = {
      Flow{.direction = Direction::kRequest, .from = client, .to = upstream_},
      Flow{.direction = Direction::kResponse, .from = upstream_, .to = client}};
  std::array<char, 64 << 10> buffer{};
  for (int round = 0; round < kMaxRounds; ++round) {
    if (flows[0].Done() && flows[1].Done()) return;
    // fds[0] the client, fds[1] the server, fds[2] the stop pipe.
    std::array<pollfd, 3> fds{};
    fds[0] = {.fd = client, .events = 0, .revents = 0};
    fds[1] = {.fd = upstream_, .events = 0, .revents = 0};
    fds[2] = {.fd = wake_read_, .events = POLLIN, .revents = 0};
    if (flows[0].Reading()) fds[0].events |= POLLIN;
    if (flows[1].Writing()) fds[0].events |= POLLOUT;
    if (flows[1].Reading()) fds[1].events |= POLLIN;
    if (flows[0].Writing()) fds[1].events |= POLLOUT;
    // A socket with nothing to wait for is left out: its hang-up would
    // otherwise wake every poll.
    for (std::size_t i = 0; i < 2; ++i) {
      if (fds[i].events == 0) fds[i].fd = -1;
    }
    const int timeout = MillisLeft(deadline_);
    if (timeout == 0) {
      capture_.error = "the capture's deadline passed";
      return;
    }
    if (::poll(fds.data(), fds.size(), timeout) < 0) {
      if (errno == EINTR) continue;
      capture_.error = std::string("poll: ") + std::strerror(errno);
      return;
    }
    if (fds[2].revents != 0) return;
    for (std::size_t i = 0; i < flows.size(); ++i) {
      Flow& flow = flows[i];
      const pollfd& from = fds[i];  // flow 0 reads the client, flow 1 the server
      if (!flow.Reading() || (from.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = ::recv(flow.from, buffer.data(), buffer.size(), 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (n <= 0) {
        // End of stream, or a reset: either way nothing more comes this way.
        flow.ended = true;
        continue;
      }
      const auto size = static_cast<std::size_t>(n);
      const std::size_t room = kMaxBytesPerDirection - flow.recorded;
      if (size > room) {
        if (room != 0)
          capture_.chunks.push_back({flow.direction, std::string(buffer.data(), room)});
        flow.recorded = kMaxBytesPerDirection;
        capture_.truncated = true;
        capture_.error = "more than 1 MiB in one direction: the capture stops there";
        return;
      }
      capture_.chunks.push_back({flow.direction, std::string(buffer.data(), size)});
      flow.recorded += size;
      flow.pending.append(buffer.data(), size);
    }
    for (Flow& flow : flows) {
      if (flow.Writing()) {
        const ssize_t n = ::send(flow.to, flow.pending.data() + flow.written,
                                 flow.pending.size() - flow.written, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          // The receiver is gone: what it would have got can no longer matter.
          flow.pending.clear();
          flow.written = 0;
          flow.ended = true;
        } else if (n > 0) {
          flow.written += static_cast<std::size_t>(n);
          if (flow.written == flow.pending.size()) {
            flow.pending.clear();
            flow.written = 0;
          }
        }
      }
      if (flow.Done() && !flow.shut) {
        ::shutdown(flow.to, SHUT_WR);
        flow.shut = true;
      }
    }
  }
  capture_.error = "too many rounds of forwarding";
}

}  // namespace polycrud::wire
