// The Thrift wire user as a core User: the one converter the C++ Thrift
// client and the Thrift micro-benchmark both use.
#pragma once

#include "UserService.h"
#include "core/user.h"

namespace polycrud::clients {

inline User FromThrift(const ::polycrud::thrift::User& u) {
  return User{.id = u.id,
              .username = u.username,
              .email = u.email,
              .full_name = u.full_name,
              .version = u.version,
              .created_at_ms = u.created_at_ms,
              .updated_at_ms = u.updated_at_ms};
}

}  // namespace polycrud::clients
