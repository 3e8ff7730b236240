// JSON codec: the REST face's bodies, built and parsed with nlohmann::json
// exactly the way adapters/rest/rest_user_routes.cc and the REST client
// (clients/rest_protocol_client.cc) do. The REST face keeps its
// conversions private to its translation unit, so they are repeated here
// line for line: responses are an ordered_json of the user fields dumped with
// error_handler_t::replace (the server), parsed back with json::parse and
// .at() (the client); the batch request is json{{"ids", ids}}.dump() (the
// client), parsed with the server's integer checks. Encode starts from core
// Users and decode ends with core Users, because the REST face has no other
// typed objects: building and walking the JSON tree is its serialization.
#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>

#include "benchmarks/micro/wire_codec.h"

namespace polycrud::micro_bench {
namespace {

using nlohmann::json;

// As RestUserRoutes (rest_user_routes.cc, ToJson).
nlohmann::ordered_json ToJson(const User& user) {
  return nlohmann::ordered_json{{"id", user.id},
                                {"username", user.username},
                                {"email", user.email},
                                {"full_name", user.full_name},
                                {"version", user.version},
                                {"created_at_ms", user.created_at_ms},
                                {"updated_at_ms", user.updated_at_ms}};
}

nlohmann::ordered_json ToJson(const std::vector<User>& users) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const User& user : users) out.push_back(ToJson(user));
  return out;
}

// As JsonResponse (problem.cc).
std::string Dump(const nlohmann::ordered_json& body) {
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// As the REST client (rest_protocol_client.cc, FromJson / UsersFromJson).
User FromJson(const json& j) {
  return User{.id = j.at("id").get<std::int64_t>(),
              .username = j.at("username").get<std::string>(),
              .email = j.at("email").get<std::string>(),
              .full_name = j.at("full_name").get<std::string>(),
              .version = j.at("version").get<std::int64_t>(),
              .created_at_ms = j.at("created_at_ms").get<std::int64_t>(),
              .updated_at_ms = j.at("updated_at_ms").get<std::int64_t>()};
}

std::vector<User> UsersFromJson(const json& j) {
  std::vector<User> users;
  for (const json& u : j) users.push_back(FromJson(u));
  return users;
}

// As RestUserRoutes::BatchGetUsers: "ids" must be an array of int64.
std::vector<std::int64_t> IdsFromJson(const json& object) {
  std::vector<std::int64_t> ids;
  const auto it = object.find("ids");
  if (it != object.end() && !it->is_null()) {
    if (!it->is_array()) throw std::runtime_error("ids must be an array of integers");
    ids.reserve(it->size());
    for (const json& id : *it) {
      if (!id.is_number_integer() ||
          (id.is_number_unsigned() &&
           id.get<std::uint64_t>() >
               static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))) {
        throw std::runtime_error("ids must be an array of 64-bit integers");
      }
      ids.push_back(id.get<std::int64_t>());
    }
  }
  return ids;
}

class JsonCodec final : public Codec {
 public:
  JsonCodec(MessageKind kind, MessageValue value) : kind_(kind), value_(std::move(value)) {}

  std::size_t Encode() override {
    switch (kind_) {
      case MessageKind::kUser:
        body_ = Dump(ToJson(value_.users.front()));
        break;
      case MessageKind::kList100:
        body_ = Dump({{"users", ToJson(value_.users)}, {"next_after_id", value_.next_after_id}});
        break;
      case MessageKind::kBatchRequest1000: {
        const json body = {{"ids", value_.ids}};
        body_ = body.dump();
        break;
      }
      case MessageKind::kBatchResponse1000:
        body_ = Dump({{"users", ToJson(value_.users)}});
        break;
    }
    return body_.size();
  }

  std::string LastWire() const override { return body_; }

  void Decode(std::string_view wire) override { DecodeValue(wire); }

  // Decoding ends in core types either way (see the file comment), so the
  // value is the decoded message itself.
  MessageValue DecodeValue(std::string_view wire) override {
    MessageValue value;
    json body;
    try {
      body = json::parse(wire);
    } catch (const json::parse_error& e) {
      throw std::runtime_error(std::string("malformed JSON: ") + e.what());
    }
    try {
      switch (kind_) {
        case MessageKind::kUser:
          value.users.push_back(FromJson(body));
          break;
        case MessageKind::kList100:
          value.users = UsersFromJson(body.at("users"));
          value.next_after_id = body.at("next_after_id").get<std::int64_t>();
          break;
        case MessageKind::kBatchRequest1000:
          value.ids = IdsFromJson(body);
          break;
        case MessageKind::kBatchResponse1000:
          value.users = UsersFromJson(body.at("users"));
          break;
      }
    } catch (const json::exception& e) {
      throw std::runtime_error(std::string("unexpected JSON: ") + e.what());
    }
    return value;
  }

 private:
  MessageKind kind_;
  MessageValue value_;
  std::string body_;
};

}  // namespace

std::unique_ptr<Codec> MakeJsonCodec(MessageKind kind, const MessageValue& value) {
  return std::make_unique<JsonCodec>(kind, value);
}

}  // namespace polycrud::micro_bench
