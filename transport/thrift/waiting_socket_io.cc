#include "transport/thrift/waiting_socket_io.h"

#include <thrift/transport/TTransportException.h>

#include <system_error>

#include "runtime/io_wait.h"
#include "transport/tls/tls.h"

namespace polycrud::thrift_transport {
namespace {

using ::apache::thrift::transport::TTransportException;

void Check(const std::error_code& ec, const char* what) {
  if (ec == std::errc::timed_out) {
    throw TTransportException(TTransportException::TIMED_OUT, "no data within the timeout");
  }
  if (ec) throw TTransportException(TTransportException::UNKNOWN, what, ec.value());
}

void Check(const std::error_code& ec, const tls::TlsChannel& channel) {
  if (ec == std::errc::timed_out) Check(ec, "");
  if (ec) {
    throw TTransportException(TTransportException::UNKNOWN, "TLS: " + channel.Error());
  }
}

std::uint32_t Received(std::size_t received) {
  if (received == 0) {
    throw TTransportException(TTransportException::END_OF_FILE, "the peer closed the connection");
  }
  return static_cast<std::uint32_t>(received);
}

}  // namespace

std::uint32_t ReadWaiting(int fd, std::uint8_t* buf, std::uint32_t len,
                          std::chrono::milliseconds timeout, bool wait_first) {
  std::size_t received = 0;
  Check(runtime::RecvSome(fd, buf, len, runtime::IoClock::now() + timeout, wait_first, received),
        "recv() failed");
  return Received(received);
}

void WriteWaiting(int fd, const std::uint8_t* buf, std::uint32_t len,
                  std::chrono::milliseconds timeout) {
  Check(runtime::SendAll(fd, buf, len, runtime::IoClock::now() + timeout), "send() failed");
}

std::uint32_t ReadWaiting(tls::TlsChannel& channel, std::uint8_t* buf, std::uint32_t len,
                          std::chrono::milliseconds timeout, bool wait_first) {
  std::size_t received = 0;
  Check(channel.ReadSome(buf, len, runtime::IoClock::now() + timeout, wait_first, received),
        channel);
  return Received(received);
}

void WriteWaiting(tls::TlsChannel& channel, const std::uint8_t* buf, std::uint32_t len,
                  std::chrono::milliseconds timeout) {
  Check(channel.WriteAll(buf, len, runtime::IoClock::now() + timeout), channel);
}

}  // namespace polycrud::thrift_transport
