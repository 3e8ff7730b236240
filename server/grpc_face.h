// The gRPC face of polycrud-server.
#pragma once

#include <memory>

#include "server/face.h"

namespace polycrud::server {

std::unique_ptr<Face> MakeGrpcFace();

}  // namespace polycrud::server
