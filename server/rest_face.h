// The REST face of polycrud-server (Boost.Beast; also /healthz, /readyz,
// /metrics and /openapi.json).
#pragma once

#include <memory>

#include "server/face.h"

namespace polycrud::server {

std::unique_ptr<Face> MakeRestFace();

}  // namespace polycrud::server
