// Factories of the ProtocolClient implementations, one per protocol; each
// lives in <protocol>_protocol_client.cc.
#pragma once

#include <memory>

#include "tests/support/protocol_client.h"

namespace polycrud::testing {

std::unique_ptr<ProtocolClient> MakeThriftProtocolClient(int port);

}  // namespace polycrud::testing
