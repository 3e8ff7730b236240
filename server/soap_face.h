// The SOAP face of polycrud-server (gSOAP, wsdl/polycrud.wsdl).
#pragma once

#include <memory>

#include "server/face.h"

namespace polycrud::server {

std::unique_ptr<Face> MakeSoapFace();

}  // namespace polycrud::server
