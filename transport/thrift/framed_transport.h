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

#include <memory>
#include <utility>

namespace polycrud::thrift_transport {

// A TFramedTransport that gives each frame the whole read budget of its
// TConfiguration. Frames larger than the configuration's max frame size are
// still refused. Like any Thrift transport: one thread at a time.
class PerFrameFramedTransport final : public apache::thrift::transport::TFramedTransport {
 public:
  using TFramedTransport::TFramedTransport;

 protected:
  // TFramedTransport:
  bool readFrame() override;
};

// Wraps each server connection in a PerFrameFramedTransport with `config`
// (the stock TFramedTransportFactory ignores TConfiguration, so its frames
// could reach the 16 MB default).
class PerFrameFramedTransportFactory final : public apache::thrift::transport::TTransportFactory {
 public:
  explicit PerFrameFramedTransportFactory(std::shared_ptr<apache::thrift::TConfiguration> config)
      : config_(std::move(config)) {}

  // TTransportFactory:
  std::shared_ptr<apache::thrift::transport::TTransport> getTransport(
      std::shared_ptr<apache::thrift::transport::TTransport> trans) override;

 private:
  std::shared_ptr<apache::thrift::TConfiguration> config_;
};

// The framed transport a client puts over its socket: a PerFrameFramedTransport
// with `config`, or Thrift's default configuration when it is null.
std::shared_ptr<apache::thrift::transport::TFramedTransport> MakeFramedTransport(
    std::shared_ptr<apache::thrift::transport::TTransport> inner,
    std::shared_ptr<apache::thrift::TConfiguration> config = nullptr);

}  // namespace polycrud::thrift_transport
