// The REST face's JSON bodies for users: the one mapping between core Users
// (and batch ids) and the JSON of openapi/polycrud.yaml, used by the routes
// and by the micro-benchmarks that measure it. Stateless and thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/user.h"

namespace polycrud::rest_adapter {

// A user as the REST face sends it, fields in contract order.
nlohmann::ordered_json UserToJson(const User& user);
// A JSON array of UserToJson, in order.
nlohmann::ordered_json UsersToJson(const std::vector<User>& users);
// A body as it goes on the wire: compact, invalid UTF-8 replaced.
std::string DumpBody(const nlohmann::ordered_json& body);
// The "ids" member of a batchGet body: absent or null is an empty list; an
// array of 64-bit integers is the list; anything else is INVALID_ARGUMENT
// naming the field "ids".
StatusOr<std::vector<std::int64_t>> BatchIdsFromJson(const nlohmann::json& body);

}  // namespace polycrud::rest_adapter
