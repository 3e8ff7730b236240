#include "clients/protocol_client.h"

#include <stdexcept>
#include <string>

#include "clients/protocol_clients.h"

namespace polycrud::clients {

const std::vector<std::string>& KnownProtocols() {
  static const std::vector<std::string> protocols = {"thrift", "thrift-compact", "grpc",
                                                     "soap",   "rest",           "web"};
  return protocols;
}

std::unique_ptr<ProtocolClient> MakeProtocolClient(std::string_view protocol,
                                                   const ClientOptions& options) {
  if (protocol == "thrift" || protocol == "thrift-compact") {
    ClientOptions thrift = options;
    thrift.thrift_compact = thrift.thrift_compact || protocol == "thrift-compact";
    return MakeThriftProtocolClient(thrift, std::string(protocol));
  }
  if (protocol == "grpc") return MakeGrpcProtocolClient(options);
  if (protocol == "soap") {
    if (options.tls.enabled() || !options.tls.ca.empty()) {
      throw std::invalid_argument("the SOAP client has no TLS (gSOAP is built without OpenSSL)");
    }
    return MakeSoapProtocolClient(options);
  }
  if (protocol == "rest") return MakeRestProtocolClient(options, "rest");
  if (protocol == "web") {
    ClientOptions web = options;
    if (web.rest_prefix.empty()) web.rest_prefix = "/api";
    return MakeRestProtocolClient(web, "web");
  }
  throw std::invalid_argument("no client for protocol " + std::string(protocol));
}

std::unique_ptr<ProtocolClient> MakeProtocolClient(std::string_view protocol, int port) {
  return MakeProtocolClient(protocol, ClientOptions{.port = port});
}

}  // namespace polycrud::clients
