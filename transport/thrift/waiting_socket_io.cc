#include "transport/thrift/waiting_socket_io.h"

#include <thrift/transport/TTransportException.h>

#include <system_error>

#include "runtime/io_wait.h"

namespace polycrud::thrift_transport {
namespace {

using ::apache::thrift::transport::TTransportException;

void Check(const std::error_code& ec, const char* what) {
  if (ec == std::errc::timed_out) {
    throw TTransportException(TTransportException::TIMED_OUT, "no data within the timeout");
  }
  if (ec) throw TTransportException(TTransportException::UNKNOWN, what, ec.value());
}

}  // namespace

std::uint32_t ReadWaiting(int fd, std::uint8_t* buf, std::uint32_t len,
                          std::chrono::milliseconds timeout, bool wait_first) {
  std::size_t received = 0;
  Check(runtime::RecvSome(fd, buf, len, runtime::IoClock::now() + timeout, wait_first, received),
        "recv() failed");
  if (received == 0) {
    throw TTransportException(TTransportException::END_OF_FILE, "the peer closed the connection");
  }
  return static_cast<std::uint32_t>(received);
}

void WriteWaiting(int fd, const std::uint8_t* buf, std::uint32_t len,
                  std::chrono::milliseconds timeout) {
  Check(runtime::SendAll(fd, buf, len, runtime::IoClock::now() + timeout), "send() failed");
}

}  // namespace polycrud::thrift_transport
