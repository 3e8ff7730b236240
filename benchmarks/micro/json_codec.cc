// JSON codec: the REST face's bodies, built and parsed with nlohmann::json
// exactly the way adapters/rest/rest_user_routes.cc and the REST client
// (clients/rest_protocol_client.cc) do. Responses are built and dumped with
// the REST face's own functions (adapters/rest/user_json.h) and parsed back
// with json::parse and .at() as the client's document path does; the batch
// request is json{{"ids", ids}}.dump() (the client), parsed with the
// server's BatchIdsFromJson. Encode starts from core
// Users and decode ends with core Users, because the REST face has no other
// typed objects: building and walking the JSON tree is its serialization.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>

#include "adapters/rest/user_json.h"
#include "benchmarks/micro/wire_codec.h"
#include "clients/json_user_convert.h"

namespace polycrud::micro_bench {
namespace {

using nlohmann::json;

using rest_adapter::DumpBody;
using rest_adapter::UsersToJson;
using rest_adapter::UserToJson;

// The REST client's own converters.
using clients::FromJson;
using clients::UsersFromJson;

// As RestUserRoutes::BatchGetUsers.
std::vector<std::int64_t> IdsFromJson(const json& object) {
  StatusOr<std::vector<std::int64_t>> ids = rest_adapter::BatchIdsFromJson(object);
  if (!ids.ok()) throw std::runtime_error(ids.status().message());
  return *std::move(ids);
}

class JsonCodec final : public Codec {
 public:
  JsonCodec(MessageKind kind, MessageValue value) : kind_(kind), value_(std::move(value)) {}

  std::size_t Encode() override {
    switch (kind_) {
      case MessageKind::kUser:
        body_ = DumpBody(UserToJson(value_.users.front()));
        break;
      case MessageKind::kList100:
        body_ = DumpBody(
            {{"users", UsersToJson(value_.users)}, {"next_after_id", value_.next_after_id}});
        break;
      case MessageKind::kBatchRequest1000: {
        const json body = {{"ids", value_.ids}};
        body_ = body.dump();
        break;
      }
      case MessageKind::kBatchResponse1000:
        body_ = DumpBody({{"users", UsersToJson(value_.users)}});
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
