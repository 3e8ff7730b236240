// The Thrift face of polycrud-server.
#pragma once

#include <memory>

#include "server/face.h"

namespace polycrud::server {

std::unique_ptr<Face> MakeThriftFace();

}  // namespace polycrud::server
