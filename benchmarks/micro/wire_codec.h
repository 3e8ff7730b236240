// The messages and the encoder/decoder interface of the protocol
// micro-benchmarks (polycrud-micro-bench).
//
// Each Codec wraps one protocol face's real serialization code for one
// message kind: the Thrift C++ types generated from idl/polycrud.thrift, the
// Protobuf messages generated from proto/polycrud/v1/user_service.proto, the
// REST face's JSON bodies (nlohmann::json), and the gSOAP data binding
// generated from wsdl/polycrud.wsdl. A codec is built once from a message in
// core terms (MessageValue); Encode() then serializes the encoding's own
// objects, Decode() parses bytes into fresh objects of the encoding, exactly
// the work a server or client of that face does per call.
//
// Bytes "on the wire" are the bytes of one message as the face's transport
// carries it:
//   thrift_binary, thrift_compact  the framed transport's frame: the 4-byte
//                                  frame length + writeMessageBegin + the
//                                  args (request) or result (response) struct;
//   protobuf                       the gRPC message: the 5-byte length prefix
//                                  + the serialized message (HTTP/2 frame and
//                                  header bytes, incl. metadata, excluded);
//   json                           the REST request or response body (HTTP/1.1
//                                  start line and headers excluded);
//   soap_xml                       the whole SOAP 1.1 envelope (HTTP/1.1 start
//                                  line and headers excluded).
// The bearer token travels in the Thrift call's arguments (counted) but in
// HTTP headers (metadata) for the other faces (not counted).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/user.h"

namespace polycrud::micro_bench {

// The messages measured, by the name benchmark names use.
enum class MessageKind {
  kUser,               // "user": getUser's response, one typical user
  kList100,            // "list_100": a listUsers response page of 100 users
  kBatchRequest1000,   // "batch_request_1000": batchGetUsers' request, 1000 ids
  kBatchResponse1000,  // "batch_response_1000": batchGetUsers' response, 1000 users
};

inline constexpr MessageKind kAllMessageKinds[] = {MessageKind::kUser, MessageKind::kList100,
                                                   MessageKind::kBatchRequest1000,
                                                   MessageKind::kBatchResponse1000};

// The name of `kind` in benchmark names ("user", "list_100", ...).
std::string_view MessageName(MessageKind kind);

// True for messages a client sends (requests), false for responses.
bool IsRequest(MessageKind kind);

// The content of one message in core terms: what a round trip must preserve.
// Only the fields that `kind` carries are set.
struct MessageValue {
  std::vector<User> users;         // user: 1; list_100: 100; batch_response_1000: 1000
  std::int64_t next_after_id = 0;  // list_100
  std::vector<std::int64_t> ids;   // batch_request_1000

  bool operator==(const MessageValue&) const = default;
};

// The sample message of `kind`: realistic users (7-digit ids around
// 4,000,000, 12-character usernames, 25-byte e-mail addresses, two-word full
// names with one accented letter, versions, millisecond timestamps of 2025).
// Deterministic.
MessageValue MakeSampleMessage(MessageKind kind);

// The token a Thrift call carries in its arguments: 64 hex digits, the
// length of the tokens `./polycrud up` generates (a placeholder, not a
// credential).
inline constexpr std::string_view kSampleToken =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// One encoding of one message kind. Not thread-safe: one benchmark at a time.
class Codec {
 public:
  virtual ~Codec() = default;

  // Encodes the codec's message into its own output buffer and returns the
  // number of bytes on the wire (see the file comment). Throws
  // std::runtime_error if the encoder reports an error.
  virtual std::size_t Encode() = 0;

  // The bytes of the last Encode(), exactly as counted by it.
  virtual std::string LastWire() const = 0;

  // Decodes `wire` (bytes of Encode()) into fresh objects of the encoding
  // and discards them. Throws std::runtime_error on malformed input or a
  // message of another kind.
  virtual void Decode(std::string_view wire) = 0;

  // Decodes as Decode() does and returns the content in core terms, for the
  // round-trip check.
  virtual MessageValue DecodeValue(std::string_view wire) = 0;
};

// Factories, one per encoding; `value` is the message (MakeSampleMessage).
std::unique_ptr<Codec> MakeThriftCodec(bool compact, MessageKind kind, const MessageValue& value);
std::unique_ptr<Codec> MakeProtobufCodec(MessageKind kind, const MessageValue& value);
std::unique_ptr<Codec> MakeJsonCodec(MessageKind kind, const MessageValue& value);
std::unique_ptr<Codec> MakeSoapCodec(MessageKind kind, const MessageValue& value);

}  // namespace polycrud::micro_bench
