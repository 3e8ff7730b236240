// Factories of the ProtocolClient implementations, one per protocol; each
// lives in <protocol>_protocol_client.cc.
#pragma once

#include <memory>

#include "tests/support/protocol_client.h"

namespace polycrud::testing {

std::unique_ptr<ProtocolClient> MakeThriftProtocolClient(int port);
std::unique_ptr<ProtocolClient> MakeGrpcProtocolClient(int port);
std::unique_ptr<ProtocolClient> MakeSoapProtocolClient(int port);
std::unique_ptr<ProtocolClient> MakeRestProtocolClient(int port);

}  // namespace polycrud::testing
