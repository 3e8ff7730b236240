// Reads and writes of a Thrift transport on a socket descriptor that never
// block the thread in recv() or send(): when the socket is not ready they
// wait in runtime::WaitReady, so a thread's IoWaiter (a fiber scheduler) may
// run other connections meanwhile, and a thread without one blocks in poll().
// Shared by the C++ Thrift client and the server's fiber model
// (polycrud::thrift_transport).
#pragma once

#include <chrono>
#include <cstdint>

namespace polycrud::tls {
class TlsChannel;
}  // namespace polycrud::tls

namespace polycrud::thrift_transport {

// Receives up to `len` bytes into `buf`, waiting until something has come or
// `timeout` passed. `wait_first` waits before the first try (right after a
// request was written, when no answer can have come yet). Throws
// TTransportException: END_OF_FILE when the peer closed the stream,
// TIMED_OUT, or UNKNOWN with the errno.
std::uint32_t ReadWaiting(int fd, std::uint8_t* buf, std::uint32_t len,
                          std::chrono::milliseconds timeout, bool wait_first);
// Sends all of buf[0, len), waiting while the socket's buffer is full, for at
// most `timeout` in all. Throws TTransportException (TIMED_OUT or UNKNOWN).
void WriteWaiting(int fd, const std::uint8_t* buf, std::uint32_t len,
                  std::chrono::milliseconds timeout);

// The same through a TLS session on the socket (tls.h); a TLS failure is
// TTransportException UNKNOWN with OpenSSL's reason.
std::uint32_t ReadWaiting(tls::TlsChannel& channel, std::uint8_t* buf, std::uint32_t len,
                          std::chrono::milliseconds timeout, bool wait_first);
void WriteWaiting(tls::TlsChannel& channel, const std::uint8_t* buf, std::uint32_t len,
                  std::chrono::milliseconds timeout);

}  // namespace polycrud::thrift_transport
