#include "adapters/server/face.h"
#include "adapters/server/thrift_face.h"

namespace polycrud::server {

FaceList MakeFaces() {
  FaceList faces;
  faces.push_back(MakeThriftFace());
  return faces;
}

}  // namespace polycrud::server
