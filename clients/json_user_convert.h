// The REST JSON user (API.md) as a core User: the one converter the REST
// client and the JSON micro-benchmark both use. Throws nlohmann::json's
// exceptions on a missing member or a wrong type.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/user.h"

namespace polycrud::clients {

inline User FromJson(const nlohmann::json& j) {
  return User{.id = j.at("id").get<std::int64_t>(),
              .username = j.at("username").get<std::string>(),
              .email = j.at("email").get<std::string>(),
              .full_name = j.at("full_name").get<std::string>(),
              .version = j.at("version").get<std::int64_t>(),
              .created_at_ms = j.at("created_at_ms").get<std::int64_t>(),
              .updated_at_ms = j.at("updated_at_ms").get<std::int64_t>()};
}

// A JSON array of users, in order.
inline std::vector<User> UsersFromJson(const nlohmann::json& j) {
  std::vector<User> users;
  users.reserve(j.size());
  for (const nlohmann::json& u : j) users.push_back(FromJson(u));
  return users;
}

}  // namespace polycrud::clients
