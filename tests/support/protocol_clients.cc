#include "tests/support/protocol_clients.h"

#include <stdexcept>
#include <string>

namespace polycrud::testing {

std::vector<std::string> ConformanceProtocols() { return {"thrift"}; }

std::unique_ptr<ProtocolClient> MakeProtocolClient(std::string_view protocol, int port) {
  if (protocol == "thrift") return MakeThriftProtocolClient(port);
  throw std::runtime_error("no test client for protocol " + std::string(protocol));
}

}  // namespace polycrud::testing
