// Protobuf codec: the messages generated from proto/polycrud/v1/user_service.proto,
// framed the way gRPC frames a message: a 5-byte prefix (compressed flag 0 and the
// big-endian length) followed by the serialized message. The HTTP/2 frame
// headers and the HPACK headers/metadata around it are not counted.
#include <memory>
#include <stdexcept>
#include <string>

#include "benchmarks/micro/wire_codec.h"
#include "clients/grpc_user_convert.h"
#include "polycrud/v1/user_service.pb.h"

namespace polycrud::micro_bench {
namespace {

namespace pb = ::polycrud::v1;

// gRPC's length-prefixed message header: 1 flag byte + 4 length bytes.
constexpr std::size_t kGrpcPrefixBytes = 5;

void ToProto(const User& u, pb::User* out) {
  out->set_id(u.id);
  out->set_username(u.username);
  out->set_email(u.email);
  out->set_full_name(u.full_name);
  out->set_version(u.version);
  out->set_created_at_ms(u.created_at_ms);
  out->set_updated_at_ms(u.updated_at_ms);
}

using clients::FromProto;  // the gRPC client's own converter

std::vector<User> FromProto(const google::protobuf::RepeatedPtrField<pb::User>& users) {
  std::vector<User> out;
  out.reserve(static_cast<std::size_t>(users.size()));
  for (const pb::User& u : users) out.push_back(FromProto(u));
  return out;
}

class ProtobufCodec final : public Codec {
 public:
  ProtobufCodec(MessageKind kind, const MessageValue& value) : kind_(kind) {
    switch (kind_) {
      case MessageKind::kUser:
        ToProto(value.users.front(), user_.mutable_user());
        break;
      case MessageKind::kList100:
        for (const User& u : value.users) ToProto(u, list_.add_users());
        list_.set_next_after_id(value.next_after_id);
        break;
      case MessageKind::kBatchRequest1000:
        batch_request_.mutable_ids()->Add(value.ids.begin(), value.ids.end());
        break;
      case MessageKind::kBatchResponse1000:
        for (const User& u : value.users) ToProto(u, batch_response_.add_users());
        break;
    }
  }

  std::size_t Encode() override {
    wire_.assign(kGrpcPrefixBytes, '\0');
    // AppendToString is SerializeToString without the clear(): the message
    // lands right after the prefix.
    if (!Current().AppendToString(&wire_))
      throw std::runtime_error("protobuf serialization failed");
    const std::size_t length = wire_.size() - kGrpcPrefixBytes;
    if (length > 0xffffffffu) throw std::runtime_error("protobuf message over 4 GiB");
    wire_[0] = 0;  // not compressed
    for (int i = 0; i < 4; ++i) {
      wire_[static_cast<std::size_t>(1 + i)] = static_cast<char>((length >> (8 * (3 - i))) & 0xff);
    }
    return wire_.size();
  }

  std::string LastWire() const override { return wire_; }

  void Decode(std::string_view wire) override { DecodeInto(wire, nullptr); }

  MessageValue DecodeValue(std::string_view wire) override {
    MessageValue value;
    DecodeInto(wire, &value);
    return value;
  }

 private:
  // The message this codec encodes.
  const google::protobuf::Message& Current() const {
    switch (kind_) {
      case MessageKind::kUser:
        return user_;
      case MessageKind::kList100:
        return list_;
      case MessageKind::kBatchRequest1000:
        return batch_request_;
      case MessageKind::kBatchResponse1000:
        return batch_response_;
    }
    return user_;
  }

  // Checks the gRPC prefix and parses the message into a fresh object (as a
  // gRPC server does per call); fills `out` when it is not null.
  void DecodeInto(std::string_view wire, MessageValue* out) const {
    if (wire.size() < kGrpcPrefixBytes || wire[0] != 0) {
      throw std::runtime_error("not an uncompressed gRPC message");
    }
    std::size_t length = 0;
    for (std::size_t i = 1; i < kGrpcPrefixBytes; ++i) {
      length = (length << 8) | static_cast<unsigned char>(wire[i]);
    }
    if (length != wire.size() - kGrpcPrefixBytes)
      throw std::runtime_error("bad gRPC length prefix");
    const char* data = wire.data() + kGrpcPrefixBytes;
    const int size = static_cast<int>(length);
    switch (kind_) {
      case MessageKind::kUser: {
        pb::GetUserResponse message;
        Parse(message, data, size);
        if (out != nullptr) out->users.push_back(FromProto(message.user()));
        break;
      }
      case MessageKind::kList100: {
        pb::ListUsersResponse message;
        Parse(message, data, size);
        if (out != nullptr) {
          out->users = FromProto(message.users());
          out->next_after_id = message.next_after_id();
        }
        break;
      }
      case MessageKind::kBatchRequest1000: {
        pb::BatchGetUsersRequest message;
        Parse(message, data, size);
        if (out != nullptr) out->ids.assign(message.ids().begin(), message.ids().end());
        break;
      }
      case MessageKind::kBatchResponse1000: {
        pb::BatchGetUsersResponse message;
        Parse(message, data, size);
        if (out != nullptr) out->users = FromProto(message.users());
        break;
      }
    }
  }

  // ParseFromArray: ParseFromString's parser, reading the bytes in place.
  static void Parse(google::protobuf::Message& message, const char* data, int size) {
    if (!message.ParseFromArray(data, size)) throw std::runtime_error("protobuf parse failed");
  }

  MessageKind kind_;
  pb::GetUserResponse user_;
  pb::ListUsersResponse list_;
  pb::BatchGetUsersRequest batch_request_;
  pb::BatchGetUsersResponse batch_response_;
  std::string wire_;
};

}  // namespace

std::unique_ptr<Codec> MakeProtobufCodec(MessageKind kind, const MessageValue& value) {
  return std::make_unique<ProtobufCodec>(kind, value);
}

}  // namespace polycrud::micro_bench
