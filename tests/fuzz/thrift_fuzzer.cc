// Fuzz target: bytes as they would arrive on a Thrift connection, decoded
// exactly as the server does (the per-frame framed transport with the
// server's frame bound, the protocol factory with its string and container
// limits; binary, or compact when built with POLYCRUD_FUZZ_COMPACT) and
// processed by the server's processor (UserService, and the status service
// for multiplexed names) over the real handlers and core. The
// server closes a connection on any Thrift exception; anything else that
// escapes is a finding.
#include <thrift/TConfiguration.h>
#include <thrift/Thrift.h>
#include <thrift/protocol/TProtocol.h>
#include <thrift/transport/TBufferTransports.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "adapters/thrift/thrift_processor.h"
#include "adapters/thrift/thrift_server.h"
#include "adapters/thrift/thrift_status_handler.h"
#include "adapters/thrift/thrift_user_handler.h"
#include "tests/fuzz/fuzz_service.h"
#include "transport/thrift/framed_transport.h"

namespace {

using apache::thrift::transport::TMemoryBuffer;
using polycrud::thrift_adapter::ThriftProtocol;

#ifdef POLYCRUD_FUZZ_COMPACT
constexpr ThriftProtocol kProtocol = ThriftProtocol::kCompact;
#else
constexpr ThriftProtocol kProtocol = ThriftProtocol::kBinary;
#endif

// The most requests one input may carry, so that an input stays quick.
constexpr int kMaxRequests = 32;

struct State {
  // Thrift reports each bad message on its global output (to stderr): a
  // flood that slows the run and says nothing a finding would not.
  State() {
    apache::thrift::GlobalOutput.setOutputFunction([](const char*) {});
  }
  polycrud::fuzz::FuzzService core;
  polycrud::thrift_adapter::ThriftProcessor processor{
      std::make_shared<polycrud::thrift_adapter::ThriftUserHandler>(core.service, core.metrics),
      std::make_shared<polycrud::thrift_adapter::ThriftStatusHandler>(
          core.service, polycrud::thrift_adapter::StatusSource{.version = "fuzz"})};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const polycrud::thrift_adapter::ThriftServerOptions options{.protocol = kProtocol};
  static const auto protocols = polycrud::thrift_adapter::MakeProtocolFactory(options);
  static const auto config = polycrud::thrift_adapter::MakeTransportConfig(options);
  polycrud::thrift_adapter::ThriftProcessor& processor = polycrud::fuzz::Fresh<State>().processor;

  auto input = std::make_shared<TMemoryBuffer>(const_cast<std::uint8_t*>(data),
                                               static_cast<std::uint32_t>(size),
                                               TMemoryBuffer::OBSERVE, config);
  auto output = std::make_shared<TMemoryBuffer>(config);
  auto in = protocols->getProtocol(polycrud::thrift_transport::MakeFramedTransport(input, config));
  auto out =
      protocols->getProtocol(polycrud::thrift_transport::MakeFramedTransport(output, config));
  try {
    for (int i = 0; i < kMaxRequests && processor.process(in, out, nullptr); ++i) {
      output->resetBuffer();
    }
  } catch (const apache::thrift::TException&) {
    // The server closes the connection (end of input, or a bad frame or message).
  }
  return 0;
}
