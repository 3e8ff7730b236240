// How synchronous code waits on its sockets: the protocol clients (every
// ProtocolClient call returns when its answer is in), the Thrift transports
// and the server's fiber Thrift model. While a caller waits (for its socket to
// become readable or writable, for a deadline, or for a call whose
// completion the thread must collect from a queue, as gRPC's completion
// queues deliver them) it asks the thread's IoWaiter (core/io_waiter.h):
// with none the thread blocks in poll(); with a fiber scheduler
// (runtime::FiberScheduler) another fiber runs meanwhile. The server's fiber
// Thrift model reads and writes its connections through the same calls.
#pragma once

#include <cstddef>
#include <system_error>

#include "core/io_waiter.h"

namespace polycrud::runtime {

using polycrud::CallDone;
using polycrud::CompletionSource;
using polycrud::IoClock;
using polycrud::IoWaiter;
using polycrud::SetThreadIoWaiter;
using polycrud::ThreadIoWaiter;

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

}  // namespace polycrud::runtime
