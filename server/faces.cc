#include "server/face.h"
#include "server/grpc_face.h"
#include "server/rest_face.h"
#include "server/soap_face.h"
#include "server/thrift_face.h"

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
