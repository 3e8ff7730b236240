#include "adapters/thrift/waiting_socket_io.h"

#include <thrift/transport/TTransportException.h>

#include <system_error>

#include "clients/io_wait.h"

namespace polycrud::thrift_adapter {
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
  Check(clients::RecvSome(fd, buf, len, clients::IoClock::now() + timeout, wait_first, received),
        "recv() failed");
  if (received == 0) {
    throw TTransportException(TTransportException::END_OF_FILE, "the peer closed the connection");
  }
  return static_cast<std::uint32_t>(received);
}

void WriteWaiting(int fd, const std::uint8_t* buf, std::uint32_t len,
                  std::chrono::milliseconds timeout) {
  Check(clients::SendAll(fd, buf, len, clients::IoClock::now() + timeout), "send() failed");
}

}  // namespace polycrud::thrift_adapter
