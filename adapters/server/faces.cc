#include "adapters/server/face.h"
#include "adapters/server/grpc_face.h"
#include "adapters/server/rest_face.h"
#include "adapters/server/soap_face.h"
#include "adapters/server/thrift_face.h"

namespace polycrud::server {

FaceList MakeFaces() {
  FaceList faces;
  faces.push_back(MakeThriftFace());
  faces.push_back(MakeGrpcFace());
  faces.push_back(MakeSoapFace());
  faces.push_back(MakeRestFace());
  return faces;
}

}  // namespace polycrud::server
