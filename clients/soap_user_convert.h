// The SOAP wire user (gSOAP's pc__User) as a core User: the one converter the
// SOAP client and the SOAP micro-benchmark both use.
#pragma once

#include "core/user.h"
#include "soapH.h"

namespace polycrud::clients {

inline User FromSoap(const pc__User& u) {
  return User{.id = u.id,
              .username = u.username,
              .email = u.email,
              .full_name = u.full_USCOREname,
              .version = u.version,
              .created_at_ms = u.created_USCOREat_USCOREms,
              .updated_at_ms = u.updated_USCOREat_USCOREms};
}

}  // namespace polycrud::clients
