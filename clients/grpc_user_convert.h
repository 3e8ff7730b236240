// The protobuf wire user as a core User: the one converter the gRPC client
// and the protobuf micro-benchmark both use.
#pragma once

#include "core/user.h"
#include "polycrud/v1/user_service.pb.h"

namespace polycrud::clients {

inline User FromProto(const ::polycrud::v1::User& u) {
  return User{.id = u.id(),
              .username = u.username(),
              .email = u.email(),
              .full_name = u.full_name(),
              .version = u.version(),
              .created_at_ms = u.created_at_ms(),
              .updated_at_ms = u.updated_at_ms()};
}

}  // namespace polycrud::clients
