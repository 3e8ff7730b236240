#include "tests/support/protocol_clients.h"

#include <stdexcept>
#include <string>

namespace polycrud::testing {

std::vector<std::string> ConformanceProtocols() { return {"thrift", "grpc", "soap", "rest"}; }

std::unique_ptr<ProtocolClient> MakeProtocolClient(std::string_view protocol, int port) {
  if (protocol == "thrift") return MakeThriftProtocolClient(port);
  if (protocol == "grpc") return MakeGrpcProtocolClient(port);
  if (protocol == "soap") return MakeSoapProtocolClient(port);
  if (protocol == "rest") return MakeRestProtocolClient(port);
  throw std::runtime_error("no test client for protocol " + std::string(protocol));
}

}  // namespace polycrud::testing
