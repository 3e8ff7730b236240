// Factories of the ProtocolClient implementations, one per protocol; each
// lives in <protocol>_protocol_client.cc. MakeProtocolClient picks one.
#pragma once

#include <memory>
#include <string>

#include "clients/protocol_client.h"

namespace polycrud::clients {

// `name` is what ProtocolClient::protocol() returns.
std::unique_ptr<ProtocolClient> MakeThriftProtocolClient(const ClientOptions& options,
                                                         std::string name);
std::unique_ptr<ProtocolClient> MakeGrpcProtocolClient(const ClientOptions& options);
std::unique_ptr<ProtocolClient> MakeSoapProtocolClient(const ClientOptions& options);
std::unique_ptr<ProtocolClient> MakeRestProtocolClient(const ClientOptions& options,
                                                       std::string name);

}  // namespace polycrud::clients
