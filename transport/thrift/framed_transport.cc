#include "transport/thrift/framed_transport.h"

#include <thrift/transport/TSocket.h>
#include <thrift/transport/TTransportException.h>

#include <algorithm>
#include <utility>

namespace polycrud::thrift_transport {

using ::apache::thrift::TConfiguration;
using ::apache::thrift::transport::TFramedTransport;
using ::apache::thrift::transport::TSocket;
using ::apache::thrift::transport::TTransport;
using ::apache::thrift::transport::TTransportException;

PerFrameFramedTransport::PerFrameFramedTransport(std::shared_ptr<RequestDeadlineSocket> deadline,
                                                 std::shared_ptr<TConfiguration> config)
    : TFramedTransport(deadline, std::move(config)), deadline_(std::move(deadline)) {}

bool PerFrameFramedTransport::readFrame() {
  // Called only once the previous frame is used up: its reads no longer count.
  resetConsumedMessageSize();
  const bool read = TFramedTransport::readFrame();
  if (deadline_ != nullptr) deadline_->EndRequest();
  return read;
}

RequestDeadlineSocket::RequestDeadlineSocket(std::shared_ptr<TSocket> socket,
                                             std::chrono::milliseconds idle_timeout,
                                             std::chrono::milliseconds request_timeout)
    : socket_(std::move(socket)), idle_timeout_(idle_timeout), request_timeout_(request_timeout) {}

bool RequestDeadlineSocket::isOpen() const { return socket_->isOpen(); }
bool RequestDeadlineSocket::peek() { return socket_->peek(); }
void RequestDeadlineSocket::open() { socket_->open(); }
void RequestDeadlineSocket::close() { socket_->close(); }
void RequestDeadlineSocket::write(const std::uint8_t* buf, std::uint32_t len) {
  socket_->write(buf, len);
}
void RequestDeadlineSocket::flush() { socket_->flush(); }

void RequestDeadlineSocket::EndRequest() { in_request_ = false; }

void RequestDeadlineSocket::WaitAtMost(std::chrono::milliseconds timeout) {
  if (timeout == current_timeout_) return;
  socket_->setRecvTimeout(static_cast<int>(timeout.count()));
  current_timeout_ = timeout;
}

std::uint32_t RequestDeadlineSocket::read(std::uint8_t* buf, std::uint32_t len) {
  if (!in_request_) {
    WaitAtMost(idle_timeout_);
    const std::uint32_t received = socket_->read(buf, len);
    in_request_ = true;
    request_deadline_ = std::chrono::steady_clock::now() + request_timeout_;
    return received;
  }
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(request_deadline_ -
                                                                 std::chrono::steady_clock::now());
  if (left <= std::chrono::milliseconds::zero()) {
    throw TTransportException(TTransportException::TIMED_OUT,
                              "a request did not arrive within the request timeout");
  }
  // Whole milliseconds, and never longer than an idle connection may wait.
  WaitAtMost(std::min(left, idle_timeout_));
  return socket_->read(buf, len);
}

std::shared_ptr<TTransport> PerFrameFramedTransportFactory::getTransport(
    std::shared_ptr<TTransport> trans) {
  if (idle_timeout_.count() > 0) {
    if (auto socket = std::dynamic_pointer_cast<TSocket>(trans)) {
      return std::make_shared<PerFrameFramedTransport>(
          std::make_shared<RequestDeadlineSocket>(std::move(socket), idle_timeout_,
                                                  request_timeout_),
          config_);
    }
  }
  return std::make_shared<PerFrameFramedTransport>(std::move(trans), config_);
}

std::shared_ptr<TFramedTransport> MakeFramedTransport(std::shared_ptr<TTransport> inner,
                                                      std::shared_ptr<TConfiguration> config) {
  return std::make_shared<PerFrameFramedTransport>(std::move(inner), std::move(config));
}

}  // namespace polycrud::thrift_transport
