#include "adapters/rest/user_json.h"

#include <limits>

namespace polycrud::rest_adapter {

nlohmann::ordered_json UserToJson(const User& user) {
  return nlohmann::ordered_json{{"id", user.id},
                                {"username", user.username},
                                {"email", user.email},
                                {"full_name", user.full_name},
                                {"version", user.version},
                                {"created_at_ms", user.created_at_ms},
                                {"updated_at_ms", user.updated_at_ms}};
}

nlohmann::ordered_json UsersToJson(const std::vector<User>& users) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const User& user : users) out.push_back(UserToJson(user));
  return out;
}

std::string DumpBody(const nlohmann::ordered_json& body) {
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

StatusOr<std::vector<std::int64_t>> BatchIdsFromJson(const nlohmann::json& body) {
  std::vector<std::int64_t> ids;
  const auto it = body.find("ids");
  if (it == body.end() || it->is_null()) return ids;
  if (!it->is_array()) return Status::InvalidArgument("ids must be an array of integers", "ids");
  ids.reserve(it->size());
  for (const nlohmann::json& id : *it) {
    if (!id.is_number_integer() ||
        (id.is_number_unsigned() &&
         id.get<std::uint64_t>() >
             static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))) {
      return Status::InvalidArgument("ids must be an array of 64-bit integers", "ids");
    }
    ids.push_back(id.get<std::int64_t>());
  }
  return ids;
}

}  // namespace polycrud::rest_adapter
