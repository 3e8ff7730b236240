#include "adapters/thrift/fiber_thrift_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <thrift/TConfiguration.h>
#include <thrift/TProcessor.h>
#include <thrift/protocol/TProtocol.h>
#include <thrift/transport/TTransportException.h>
#include <thrift/transport/TVirtualTransport.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "core/resilience.h"
#include "runtime/connection_budget.h"
#include "runtime/fiber_scheduler.h"
#include "runtime/io_wait.h"
#include "transport/thrift/framed_transport.h"
#include "transport/thrift/waiting_socket_io.h"
#include "transport/tls/tls.h"

namespace polycrud::thrift_adapter {
namespace {

using thrift_transport::MakeFramedTransport;
using thrift_transport::ReadWaiting;
using thrift_transport::WriteWaiting;

using ::apache::thrift::transport::TTransportException;
using ::apache::thrift::transport::TVirtualTransport;

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::system_category(), what);
}

// One accepted connection's socket. The descriptor is closed by the server.
// Between requests a read waits up to the idle timeout; once a request's
// first byte is in, the rest of it must arrive within the request timeout
// in all (each read waits only what is left of it).
class ConnectionSocket final : public TVirtualTransport<ConnectionSocket> {
 public:
  // `tls`: the connection's TLS session after its handshake, or null.
  ConnectionSocket(int fd, tls::TlsChannel* tls, const FiberServerOptions& options)
      : fd_(fd),
        tls_(tls),
        idle_timeout_(options.idle_timeout),
        request_timeout_(options.request_timeout),
        send_timeout_(options.send_timeout) {}

  bool isOpen() const override { return true; }

  // The request just read is complete: the next read waits for a new one.
  void EndRequest() { in_request_ = false; }

  std::uint32_t read(std::uint8_t* buf, std::uint32_t len) {
    std::chrono::milliseconds timeout = idle_timeout_;
    if (in_request_) {
      timeout = std::min(timeout, std::chrono::duration_cast<std::chrono::milliseconds>(
                                      request_deadline_ - runtime::IoClock::now()));
      if (timeout <= std::chrono::milliseconds::zero()) {
        throw TTransportException(TTransportException::TIMED_OUT,
                                  "a request did not arrive within the request timeout");
      }
    }
    // Right after an answer went out the next request cannot be in yet.
    const bool wait_first = std::exchange(sent_, false);
    const std::uint32_t received = tls_ != nullptr
                                       ? ReadWaiting(*tls_, buf, len, timeout, wait_first)
                                       : ReadWaiting(fd_, buf, len, timeout, wait_first);
    if (!in_request_) {
      in_request_ = true;
      request_deadline_ = runtime::IoClock::now() + request_timeout_;
    }
    return received;
  }
  void write(const std::uint8_t* buf, std::uint32_t len) {
    if (tls_ != nullptr) {
      WriteWaiting(*tls_, buf, len, send_timeout_);
    } else {
      WriteWaiting(fd_, buf, len, send_timeout_);
    }
    sent_ = true;
  }

 private:
  const int fd_;
  tls::TlsChannel* const tls_;
  const std::chrono::milliseconds idle_timeout_;
  const std::chrono::milliseconds request_timeout_;
  const std::chrono::milliseconds send_timeout_;
  bool sent_ = false;
  bool in_request_ = false;
  runtime::IoClock::time_point request_deadline_;
};

// A TCP socket bound to address:port; with `share`, SO_REUSEPORT lets the
// other fiber threads' sockets bind the same port.
int Bind(const std::string& address, int port, bool share) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno("socket");
  const int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      (share && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)) {
    ::close(fd);
    ThrowErrno("setsockopt");
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) {
    ::close(fd);
    throw std::invalid_argument("not an IPv4 address: " + address);
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::system_error(error, std::system_category(),
                            "cannot listen on " + address + ":" + std::to_string(port));
  }
  return fd;
}

int Listen(const std::string& address, int port) {
  const int fd = Bind(address, port, /*share=*/true);
  if (::listen(fd, 1024) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::system_error(error, std::system_category(),
                            "cannot listen on " + address + ":" + std::to_string(port));
  }
  return fd;
}

// Throws if another socket listens on address:port. SO_REUSEPORT would let
// the threads' sockets join the group of another process's (a second server
// started on the same port by mistake) and split the connections with it
// without a word; a socket without it cannot bind beside a listening one,
// so one is bound, and closed, first.
void CheckPortIsFree(const std::string& address, int port) { ::close(Bind(address, port, false)); }

int BoundPort(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) ThrowErrno("getsockname");
  return ntohs(sa.sin_port);
}

}  // namespace

FiberThriftServer::FiberThriftServer(
    std::vector<std::shared_ptr<apache::thrift::TProcessor>> processors,
    std::shared_ptr<apache::thrift::protocol::TProtocolFactory> protocol,
    std::shared_ptr<apache::thrift::TConfiguration> config, FiberServerOptions options)
    : processors_(std::move(processors)),
      protocol_(std::move(protocol)),
      config_(std::move(config)),
      options_(std::move(options)) {}

FiberThriftServer::~FiberThriftServer() {
  Stop();
  for (const int fd : listen_fds_) ::close(fd);
}

void FiberThriftServer::Start() {
  if (processors_.size() != static_cast<std::size_t>(options_.threads)) {
    throw std::invalid_argument("thrift: one processor per fiber thread is needed");
  }
  port_ = options_.port;
  if (port_ != 0) CheckPortIsFree(options_.bind_address, port_);
  try {
    for (int i = 0; i < options_.threads; ++i) {
      listen_fds_.push_back(Listen(options_.bind_address, port_));
      if (port_ == 0) port_ = BoundPort(listen_fds_.front());
    }
  } catch (...) {
    for (const int fd : listen_fds_) ::close(fd);
    listen_fds_.clear();
    throw;
  }
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this, i] { RunThread(i); });
}

void FiberThriftServer::Stop() {
  {
    const std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    // Wakes each acceptor: accept() then fails and it returns.
    for (const int fd : listen_fds_) ::shutdown(fd, SHUT_RDWR);
    // A connection between calls reads end-of-file and ends; one in a call
    // finishes it, answers, and then reads end-of-file.
    for (const int fd : open_) ::shutdown(fd, SHUT_RD);
  }
  for (std::thread& t : threads_) t.join();
}

void FiberThriftServer::RunThread(int thread) {
  try {
    runtime::FiberScheduler scheduler;
    scheduler.Spawn([this, &scheduler, thread] { Accept(scheduler, thread); });
    scheduler.Run();
  } catch (const std::exception& e) {
    spdlog::critical("thrift: a server thread stopped: {}", e.what());
  }
}

void FiberThriftServer::Accept(runtime::FiberScheduler& scheduler, int thread) {
  const int listen_fd = listen_fds_[static_cast<std::size_t>(thread)];
  apache::thrift::TProcessor& processor = *processors_[static_cast<std::size_t>(thread)];
  for (;;) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    const int error = errno;
    bool refused = false;
    {
      const std::lock_guard lock(mu_);
      if (stopping_) {
        if (fd >= 0) ::close(fd);
        return;
      }
      if (fd >= 0) {
        refused = open_.size() >= static_cast<std::size_t>(options_.max_connections);
        if (!refused) open_.insert(fd);
      }
    }
    if (fd < 0) {
      if (error == EAGAIN || error == EWOULDBLOCK) {
        runtime::WaitReady(listen_fd, POLLIN, runtime::IoClock::time_point::max());
      } else if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
        spdlog::warn("thrift: cannot accept: {}", std::strerror(error));
        runtime::SleepUntil(runtime::IoClock::now() + std::chrono::milliseconds(50));
      } else if (error != EINTR && error != ECONNABORTED) {
        spdlog::warn("thrift: accept failed: {}", std::strerror(error));
      }
      continue;
    }
    if (refused) {
      spdlog::warn("thrift: {} connections open, refusing one more", options_.max_connections);
      ::close(fd);
      continue;
    }
    std::shared_ptr<ConcurrencyLimiter::Slot> slot;
    if (options_.connections != nullptr) {
      std::optional<ConcurrencyLimiter::Slot> taken = options_.connections->TryTake();
      if (!taken) {
        if (options_.connections->TakeWarningTurn()) {
          spdlog::warn("thrift: the process holds its {} client connections, refusing more",
                       options_.connections->limit());
        }
        Refuse(fd);
        continue;
      }
      slot = std::make_shared<ConcurrencyLimiter::Slot>(std::move(*taken));
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // The slot is given back when the connection's fiber ends.
    scheduler.Spawn([this, fd, &processor, slot] { Serve(fd, processor); });
  }
}

void FiberThriftServer::Refuse(int fd) {
  {
    const std::lock_guard lock(mu_);
    open_.erase(fd);
  }
  ::close(fd);
}

void FiberThriftServer::Serve(int fd, apache::thrift::TProcessor& processor) {
  std::unique_ptr<tls::TlsChannel> channel;
  try {
    if (options_.tls != nullptr) {
      channel = tls::TlsChannel::Server(options_.tls, fd);
      if (const std::error_code ec =
              channel->Handshake(runtime::IoClock::now() + options_.request_timeout)) {
        throw TTransportException(
            TTransportException::UNKNOWN,
            "TLS handshake failed: " +
                (ec == std::errc::timed_out ? std::string("timed out") : channel->Error()));
      }
    }
    auto socket = std::make_shared<ConnectionSocket>(fd, channel.get(), options_);
    auto framed = MakeFramedTransport(socket, config_);
    auto protocol = protocol_->getProtocol(framed);
    while (processor.process(protocol, protocol, nullptr)) {
      socket->EndRequest();
    }
    if (channel) channel->Shutdown();
  } catch (const TTransportException& e) {
    if (e.getType() != TTransportException::END_OF_FILE) {
      spdlog::debug("thrift: closing a connection: {}", e.what());
    }
  } catch (const std::exception& e) {
    spdlog::warn("thrift: closing a connection: {}", e.what());
  }
  {
    const std::lock_guard lock(mu_);
    open_.erase(fd);
  }
  ::close(fd);
}

}  // namespace polycrud::thrift_adapter
