// Framed Thrift transports whose read budget is one frame, for the server and
// every C++ Thrift client of the project (polycrud::thrift_transport).
//
// Thrift 0.17's TFramedTransport draws TConfiguration's max message size
// (100 MiB by default) down by every string and varint a protocol reads
// through it, and restores it only in flush(). A transport that reads without
// flushing, such as the input side of a TThreadPoolServer connection (its
// replies go out through a second transport), is therefore closed with
// "MaxMessageSize reached" once about 100 MiB have crossed it in total,
// however small each message is. PerFrameFramedTransport restores the budget
// before every frame, so each message is bounded by the max frame size while
// a connection may read any total. A client that sends and receives through
// one transport is restored by the flush() of each request anyway; clients
// use PerFrameFramedTransport too, so that none depends on that.
#pragma once

#include <thrift/TConfiguration.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TTransport.h>
#include <thrift/transport/TVirtualTransport.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <utility>

namespace apache::thrift::transport {
class TSocket;
}  // namespace apache::thrift::transport

namespace polycrud::thrift_transport {

class RequestDeadlineSocket;

// A TFramedTransport that gives each frame the whole read budget of its
// TConfiguration. Frames larger than the configuration's max frame size are
// still refused. Like any Thrift transport: one thread at a time.
class PerFrameFramedTransport final : public apache::thrift::transport::TFramedTransport {
 public:
  using TFramedTransport::TFramedTransport;
  // Reads through `deadline`, told when each frame is whole.
  PerFrameFramedTransport(std::shared_ptr<RequestDeadlineSocket> deadline,
                          std::shared_ptr<apache::thrift::TConfiguration> config);

 protected:
  // TFramedTransport:
  bool readFrame() override;

 private:
  std::shared_ptr<RequestDeadlineSocket> deadline_;  // null: plain reads
};

// The reads of a blocking server connection (Thrift's TSocket or
// TSSLSocket, as TThreadPoolServer runs them) with two bounds: the next
// request's first byte may take `idle_timeout`, and once it is in, the whole
// request must arrive within `request_timeout` (each read waits only what is
// left), so a client that sends a byte now and then cannot hold a worker.
// Writes pass through. One thread at a time.
class RequestDeadlineSocket final
    : public apache::thrift::transport::TVirtualTransport<RequestDeadlineSocket> {
 public:
  RequestDeadlineSocket(std::shared_ptr<apache::thrift::transport::TSocket> socket,
                        std::chrono::milliseconds idle_timeout,
                        std::chrono::milliseconds request_timeout);

  bool isOpen() const override;
  bool peek() override;
  void open() override;
  void close() override;
  std::uint32_t read(std::uint8_t* buf, std::uint32_t len);
  void write(const std::uint8_t* buf, std::uint32_t len);
  void flush() override;
  // The request read last is whole: the next read waits for a new one.
  void EndRequest();

 private:
  // Sets the socket's receive timeout when it changes.
  void WaitAtMost(std::chrono::milliseconds timeout);

  std::shared_ptr<apache::thrift::transport::TSocket> socket_;
  const std::chrono::milliseconds idle_timeout_;
  const std::chrono::milliseconds request_timeout_;
  bool in_request_ = false;
  std::chrono::steady_clock::time_point request_deadline_;
  std::chrono::milliseconds current_timeout_{-1};
};

// Wraps each server connection in a PerFrameFramedTransport with `config`
// (the stock TFramedTransportFactory ignores TConfiguration, so its frames
// could reach the 16 MB default); with timeouts, a socket's reads also go
// through a RequestDeadlineSocket.
class PerFrameFramedTransportFactory final : public apache::thrift::transport::TTransportFactory {
 public:
  explicit PerFrameFramedTransportFactory(std::shared_ptr<apache::thrift::TConfiguration> config)
      : config_(std::move(config)) {}
  PerFrameFramedTransportFactory(std::shared_ptr<apache::thrift::TConfiguration> config,
                                 std::chrono::milliseconds idle_timeout,
                                 std::chrono::milliseconds request_timeout)
      : config_(std::move(config)),
        idle_timeout_(idle_timeout),
        request_timeout_(request_timeout) {}

  // TTransportFactory:
  std::shared_ptr<apache::thrift::transport::TTransport> getTransport(
      std::shared_ptr<apache::thrift::transport::TTransport> trans) override;

 private:
  std::shared_ptr<apache::thrift::TConfiguration> config_;
  std::chrono::milliseconds idle_timeout_{0};  // 0: no RequestDeadlineSocket
  std::chrono::milliseconds request_timeout_{0};
};

// The framed transport a client puts over its socket: a PerFrameFramedTransport
// with `config`, or Thrift's default configuration when it is null.
std::shared_ptr<apache::thrift::transport::TFramedTransport> MakeFramedTransport(
    std::shared_ptr<apache::thrift::transport::TTransport> inner,
    std::shared_ptr<apache::thrift::TConfiguration> config = nullptr);

}  // namespace polycrud::thrift_transport
