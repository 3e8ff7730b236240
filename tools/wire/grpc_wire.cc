#include "tools/wire/grpc_wire.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "polycrud/v1/user_service.pb.h"

namespace polycrud::wire {
namespace {

namespace pb = ::google::protobuf;
using pb::internal::WireFormatLite;

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr std::size_t kFrameHeaderSize = 9;
// Embedded messages deeper than this are shown as bytes.
constexpr int kMaxDepth = 32;

std::uint32_t BigEndian(std::string_view bytes, std::size_t at, std::size_t size) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < size; ++i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  }
  return value;
}

enum FrameType : std::uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};

constexpr std::uint8_t kEndStream = 0x1;
constexpr std::uint8_t kAck = 0x1;
constexpr std::uint8_t kEndHeaders = 0x4;
constexpr std::uint8_t kPadded = 0x8;
constexpr std::uint8_t kPriorityFlag = 0x20;

std::string FrameTypeName(std::uint8_t type) {
  switch (type) {
    case kData:
      return "DATA";
    case kHeaders:
      return "HEADERS";
    case kPriority:
      return "PRIORITY";
    case kRstStream:
      return "RST_STREAM";
    case kSettings:
      return "SETTINGS";
    case kPushPromise:
      return "PUSH_PROMISE";
    case kPing:
      return "PING";
    case kGoaway:
      return "GOAWAY";
    case kWindowUpdate:
      return "WINDOW_UPDATE";
    case kContinuation:
      return "CONTINUATION";
    default:
      return "unknown";
  }
}

// The names of the flags set in `flags` that `type` defines.
std::string FlagNames(std::uint8_t type, std::uint8_t flags) {
  std::vector<std::pair<std::uint8_t, const char*>> known;
  switch (type) {
    case kData:
      known = {{kEndStream, "END_STREAM"}, {kPadded, "PADDED"}};
      break;
    case kHeaders:
      known = {{kEndStream, "END_STREAM"},
               {kEndHeaders, "END_HEADERS"},
               {kPadded, "PADDED"},
               {kPriorityFlag, "PRIORITY"}};
      break;
    case kSettings:
    case kPing:
      known = {{kAck, "ACK"}};
      break;
    case kPushPromise:
      known = {{kEndHeaders, "END_HEADERS"}, {kPadded, "PADDED"}};
      break;
    case kContinuation:
      known = {{kEndHeaders, "END_HEADERS"}};
      break;
    default:
      break;
  }
  std::string names;
  for (const auto& [bit, name] : known) {
    if ((flags & bit) == 0) continue;
    if (!names.empty()) names += " | ";
    names += name;
  }
  return names;
}

std::string SettingName(std::uint32_t id) {
  switch (id) {
    case 0x1:
      return "HEADER_TABLE_SIZE";
    case 0x2:
      return "ENABLE_PUSH";
    case 0x3:
      return "MAX_CONCURRENT_STREAMS";
    case 0x4:
      return "INITIAL_WINDOW_SIZE";
    case 0x5:
      return "MAX_FRAME_SIZE";
    case 0x6:
      return "MAX_HEADER_LIST_SIZE";
    case 0x8:
      return "ENABLE_CONNECT_PROTOCOL";
    case 0x9:
      return "NO_RFC7540_PRIORITIES";
    case 0xfe03:
      return "GRPC_ALLOW_TRUE_BINARY_METADATA";
    default:
      return "unknown setting";
  }
}

std::string ErrorCodeName(std::uint32_t code) {
  static constexpr const char* kNames[] = {"NO_ERROR",
                                           "PROTOCOL_ERROR",
                                           "INTERNAL_ERROR",
                                           "FLOW_CONTROL_ERROR",
                                           "SETTINGS_TIMEOUT",
                                           "STREAM_CLOSED",
                                           "FRAME_SIZE_ERROR",
                                           "REFUSED_STREAM",
                                           "CANCEL",
                                           "COMPRESSION_ERROR",
                                           "CONNECT_ERROR",
                                           "ENHANCE_YOUR_CALM",
                                           "INADEQUATE_SECURITY",
                                           "HTTP_1_1_REQUIRED"};
  const std::string name = code < std::size(kNames) ? kNames[code] : "unknown error code";
  return name + " (" + HexNumber(code) + ")";
}

std::string WireTypeName(int wire_type) {
  switch (wire_type) {
    case WireFormatLite::WIRETYPE_VARINT:
      return "varint";
    case WireFormatLite::WIRETYPE_FIXED64:
      return "fixed64";
    case WireFormatLite::WIRETYPE_LENGTH_DELIMITED:
      return "length-delimited";
    case WireFormatLite::WIRETYPE_START_GROUP:
      return "start group";
    case WireFormatLite::WIRETYPE_END_GROUP:
      return "end group";
    case WireFormatLite::WIRETYPE_FIXED32:
      return "fixed32";
    default:
      return "wire type " + std::to_string(wire_type);
  }
}

// A varint's value as the field's type reads it.
std::string VarintText(const pb::FieldDescriptor* field, std::uint64_t value) {
  if (field == nullptr) return std::to_string(value);
  switch (field->type()) {
    case pb::FieldDescriptor::TYPE_INT64:
      return std::to_string(static_cast<std::int64_t>(value));
    case pb::FieldDescriptor::TYPE_INT32:
      return std::to_string(static_cast<std::int32_t>(static_cast<std::int64_t>(value)));
    case pb::FieldDescriptor::TYPE_BOOL:
      return value != 0 ? "true" : "false";
    case pb::FieldDescriptor::TYPE_SINT32:
      return std::to_string(
          WireFormatLite::ZigZagDecode32(static_cast<std::uint32_t>(value & 0xFFFFFFFFu)));
    case pb::FieldDescriptor::TYPE_SINT64:
      return std::to_string(WireFormatLite::ZigZagDecode64(value));
    case pb::FieldDescriptor::TYPE_ENUM: {
      const auto number = static_cast<int>(static_cast<std::int32_t>(value & 0xFFFFFFFFu));
      if (const pb::EnumValueDescriptor* e = field->enum_type()->FindValueByNumber(number)) {
        return e->name() + " (" + std::to_string(number) + ")";
      }
      return std::to_string(number);
    }
    default:
      return std::to_string(value);
  }
}

std::string Fixed64Text(const pb::FieldDescriptor* field, std::uint64_t value) {
  if (field != nullptr && field->type() == pb::FieldDescriptor::TYPE_DOUBLE) {
    double d = 0;
    std::memcpy(&d, &value, sizeof d);
    return std::to_string(d);
  }
  if (field != nullptr && field->type() == pb::FieldDescriptor::TYPE_SFIXED64) {
    return std::to_string(static_cast<std::int64_t>(value));
  }
  return std::to_string(value);
}

std::string Fixed32Text(const pb::FieldDescriptor* field, std::uint32_t value) {
  if (field != nullptr && field->type() == pb::FieldDescriptor::TYPE_FLOAT) {
    float f = 0;
    std::memcpy(&f, &value, sizeof f);
    return std::to_string(f);
  }
  if (field != nullptr && field->type() == pb::FieldDescriptor::TYPE_SFIXED32) {
    return std::to_string(static_cast<std::int32_t>(value));
  }
  return std::to_string(value);
}

// The values of a packed repeated field, as the field's type reads them.
std::string PackedText(const pb::FieldDescriptor* field, std::string_view bytes) {
  pb::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                              static_cast<int>(bytes.size()));
  const WireFormatLite::WireType wire_type =
      WireFormatLite::WireTypeForFieldType(static_cast<WireFormatLite::FieldType>(field->type()));
  std::string out = "[";
  // Every value takes at least one byte.
  for (std::size_t i = 0; i < bytes.size() && in.BytesUntilLimit() != 0; ++i) {
    if (i != 0) out += ", ";
    bool ok = false;
    if (wire_type == WireFormatLite::WIRETYPE_VARINT) {
      std::uint64_t v = 0;
      ok = in.ReadVarint64(&v);
      if (ok) out += VarintText(field, v);
    } else if (wire_type == WireFormatLite::WIRETYPE_FIXED64) {
      std::uint64_t v = 0;
      ok = in.ReadLittleEndian64(&v);
      if (ok) out += Fixed64Text(field, v);
    } else if (wire_type == WireFormatLite::WIRETYPE_FIXED32) {
      std::uint32_t v = 0;
      ok = in.ReadLittleEndian32(&v);
      if (ok) out += Fixed32Text(field, v);
    }
    if (!ok) return "packed values that do not decode: " + Hex(bytes);
  }
  return out + "]";
}

// Adds the parts of one protobuf message that starts at parts.end(): a tag
// part and a value part per field, embedded messages recursively.
void AnnotateProtobuf(std::string_view message, const pb::Descriptor* type,
                      const std::string& section, PartList& parts, int depth) {
  const std::size_t base = parts.end();
  pb::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(message.data()),
                              static_cast<int>(message.size()));
  const auto consumed = [&] {
    return base + static_cast<std::size_t>(in.CurrentPosition()) - parts.end();
  };
  // Every field takes at least its tag byte.
  for (std::size_t fields = 0; fields < message.size(); ++fields) {
    if (in.BytesUntilLimit() == 0) break;
    const std::uint32_t tag = in.ReadTag();
    if (tag == 0) break;
    const int number = WireFormatLite::GetTagFieldNumber(tag);
    const int wire_type = WireFormatLite::GetTagWireType(tag);
    const pb::FieldDescriptor* field = type != nullptr ? type->FindFieldByNumber(number) : nullptr;
    const std::string name = field != nullptr ? field->name() : "";
    parts.Add(consumed(), section,
              "field " + std::to_string(number) + " (" + WireTypeName(wire_type) + ")" +
                  (name.empty() ? "" : " " + name),
              "tag " + HexNumber(tag) + ": field " + std::to_string(number) + ", wire type " +
                  std::to_string(wire_type) +
                  (field != nullptr ? ", " + std::string(field->type_name()) : ""));
    const std::string label = name.empty() ? "value" : name;
    if (wire_type == WireFormatLite::WIRETYPE_VARINT) {
      std::uint64_t v = 0;
      if (!in.ReadVarint64(&v)) break;
      parts.Add(consumed(), section, label, VarintText(field, v));
    } else if (wire_type == WireFormatLite::WIRETYPE_FIXED64) {
      std::uint64_t v = 0;
      if (!in.ReadLittleEndian64(&v)) break;
      parts.Add(consumed(), section, label, Fixed64Text(field, v));
    } else if (wire_type == WireFormatLite::WIRETYPE_FIXED32) {
      std::uint32_t v = 0;
      if (!in.ReadLittleEndian32(&v)) break;
      parts.Add(consumed(), section, label, Fixed32Text(field, v));
    } else if (wire_type == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      std::uint32_t length = 0;
      if (!in.ReadVarint32(&length)) break;
      const auto at = static_cast<std::size_t>(in.CurrentPosition());
      if (length > message.size() - at) break;
      const std::string_view bytes = message.substr(at, length);
      if (field != nullptr && field->type() == pb::FieldDescriptor::TYPE_MESSAGE &&
          depth < kMaxDepth) {
        parts.Add(consumed(), section, "length", std::to_string(length) + " bytes");
        const pb::Descriptor* nested = field->message_type();
        AnnotateProtobuf(
            bytes, nested,
            "message field " + std::to_string(number) + " (" + name + "): " + nested->full_name(),
            parts, depth + 1);
        parts.AddUnparsed(base + at + length, section);
        if (!in.Skip(static_cast<int>(length))) break;
        continue;
      }
      if (!in.Skip(static_cast<int>(length))) break;
      std::string value;
      if (field == nullptr || field->type() == pb::FieldDescriptor::TYPE_STRING) {
        value = Quoted(bytes);
      } else if (field->is_packable()) {
        value = PackedText(field, bytes);
      } else {
        value = "0x" + Hex(bytes);
      }
      parts.Add(consumed(), section, label + " (" + std::to_string(length) + " bytes)", value);
    } else {
      break;  // groups: proto3 has none
    }
  }
  parts.AddUnparsed(base + message.size(), section, "not a protobuf field");
}

// The message type of a call's request or response, by its :path
// ("/package.Service/Method"), from the generated descriptors.
const pb::Descriptor* MessageType(const std::string& path, bool request) {
  // The generated GetUser messages, so that their descriptors are linked in
  // and in the generated pool.
  static const bool linked = polycrud::v1::GetUserRequest::descriptor() != nullptr &&
                             polycrud::v1::GetUserResponse::descriptor() != nullptr;
  if (!linked || path.size() < 2 || path[0] != '/') return nullptr;
  std::string name = path.substr(1);
  const std::size_t slash = name.find('/');
  if (slash == std::string::npos) return nullptr;
  name[slash] = '.';
  const pb::MethodDescriptor* method = pb::DescriptorPool::generated_pool()->FindMethodByName(name);
  if (method == nullptr) return nullptr;
  return request ? method->input_type() : method->output_type();
}

struct InflaterDeleter {
  void operator()(nghttp2_hd_inflater* inflater) const { nghttp2_hd_inflate_del(inflater); }
};

// Where a stream's gRPC message framing stands in one direction, between
// DATA frames.
struct MessageState {
  std::string prefix;       // the first bytes of a message prefix split over frames
  std::size_t pending = 0;  // bytes of a message that continue in the next DATA frame
};

// Reads the frames of one direction.
class Http2Reader {
 public:
  Http2Reader(std::string_view bytes, bool request, std::map<std::uint32_t, std::string>& paths)
      : bytes_(bytes), request_(request), paths_(paths), parts_(bytes.size()) {
    nghttp2_hd_inflater* inflater = nullptr;
    if (nghttp2_hd_inflate_new(&inflater) == 0) inflater_.reset(inflater);
  }

  std::vector<Part> Read() && {
    if (request_ && bytes_.substr(0, kPreface.size()) == kPreface) {
      parts_.Add(kPreface.size(), "HTTP/2 connection preface", "preface", EscapeText(kPreface));
    }
    // Every frame takes at least its header.
    for (std::size_t frames = 0; frames <= bytes_.size() / kFrameHeaderSize; ++frames) {
      const std::size_t at = parts_.end();
      if (bytes_.size() - at < kFrameHeaderSize) break;
      ReadFrame(at);
    }
    return std::move(parts_).Finish();
  }

 private:
  void ReadFrame(std::size_t at) {
    const std::uint32_t length = BigEndian(bytes_, at, 3);
    const auto type = static_cast<std::uint8_t>(bytes_[at + 3]);
    const auto flags = static_cast<std::uint8_t>(bytes_[at + 4]);
    const std::uint32_t stream = BigEndian(bytes_, at + 5, 4) & 0x7FFFFFFFu;
    const std::string section =
        FrameTypeName(type) + " frame (stream " + std::to_string(stream) + ")";
    const std::string names = FlagNames(type, flags);
    parts_.Add(kFrameHeaderSize, section, "frame header",
               "length " + std::to_string(length) + ", type " + FrameTypeName(type) + " (" +
                   HexNumber(type) + "), flags " + HexNumber(flags) +
                   (names.empty() ? "" : " (" + names + ")") + ", stream " +
                   std::to_string(stream));
    const std::size_t start = parts_.end();
    const std::size_t present = std::min<std::size_t>(length, bytes_.size() - start);
    if (present < length) {
      parts_.Add(present, section, "payload (cut off)",
                 std::to_string(present) + " of " + std::to_string(length) + " bytes captured");
      return;
    }
    const std::string_view payload = bytes_.substr(start, length);
    switch (type) {
      case kData:
        ReadData(payload, flags, stream, section);
        break;
      case kHeaders:
      case kPushPromise:
      case kContinuation:
        ReadHeaderBlockFrame(payload, type, flags, stream, section);
        break;
      case kSettings:
        for (std::size_t i = 0; i + 6 <= payload.size(); i += 6) {
          const std::uint32_t id = BigEndian(payload, i, 2);
          parts_.Add(6, section, "setting",
                     SettingName(id) + " (" + HexNumber(id) +
                         ") = " + std::to_string(BigEndian(payload, i + 2, 4)));
        }
        break;
      case kPing:
        parts_.Add(payload.size(), section, "opaque data", "0x" + Hex(payload));
        break;
      case kWindowUpdate:
        if (payload.size() == 4) {
          parts_.Add(4, section, "window size increment",
                     std::to_string(BigEndian(payload, 0, 4) & 0x7FFFFFFFu));
        }
        break;
      case kRstStream:
        if (payload.size() == 4) {
          parts_.Add(4, section, "error code", ErrorCodeName(BigEndian(payload, 0, 4)));
        }
        break;
      case kGoaway:
        if (payload.size() >= 8) {
          parts_.Add(4, section, "last stream id",
                     std::to_string(BigEndian(payload, 0, 4) & 0x7FFFFFFFu));
          parts_.Add(4, section, "error code", ErrorCodeName(BigEndian(payload, 4, 4)));
          parts_.Add(payload.size() - 8, section, "debug data", EscapeText(payload.substr(8)));
        }
        break;
      case kPriority:
        if (payload.size() == 5) AddPriority(payload, section);
        break;
      default:
        parts_.Add(payload.size(), section, "payload", "0x" + Hex(payload));
        break;
    }
    parts_.AddUnparsed(start + length, section, "not understood in this frame");
  }

  void AddPriority(std::string_view bytes, const std::string& section) {
    const std::uint32_t dependency = BigEndian(bytes, 0, 4);
    parts_.Add(5, section, "priority",
               "depends on stream " + std::to_string(dependency & 0x7FFFFFFFu) +
                   ((dependency & 0x80000000u) != 0 ? " (exclusive)" : "") + ", weight " +
                   std::to_string(static_cast<unsigned char>(bytes[4]) + 1));
  }

  // The padding length of a PADDED frame, as a part; the content's size, or
  // npos when the padding does not fit.
  std::size_t ReadPadLength(std::string_view payload, std::uint8_t flags, std::size_t& padding,
                            const std::string& section) {
    padding = 0;
    if ((flags & kPadded) == 0) return payload.size();
    if (payload.empty()) return std::string_view::npos;
    padding = static_cast<unsigned char>(payload[0]);
    if (padding + 1 > payload.size()) return std::string_view::npos;
    parts_.Add(1, section, "pad length", std::to_string(padding) + " bytes");
    return payload.size() - 1 - padding;
  }

  void ReadHeaderBlockFrame(std::string_view payload, std::uint8_t type, std::uint8_t flags,
                            std::uint32_t stream, const std::string& section) {
    std::size_t padding = 0;
    std::size_t content = payload.size();
    if (type != kContinuation) {
      content = ReadPadLength(payload, flags, padding, section);
      if (content == std::string_view::npos) return;
    }
    std::size_t skip = payload.size() - padding - content;  // the pad length byte
    if (type == kHeaders && (flags & kPriorityFlag) != 0) {
      if (content < 5) return;
      AddPriority(payload.substr(skip, 5), section);
      skip += 5;
      content -= 5;
    }
    if (type == kPushPromise) {
      if (content < 4) return;
      parts_.Add(4, section, "promised stream id",
                 std::to_string(BigEndian(payload, skip, 4) & 0x7FFFFFFFu));
      skip += 4;
      content -= 4;
    }
    const std::string_view block = payload.substr(skip, content);
    const bool end_headers = (flags & kEndHeaders) != 0;
    bool conceal = false;
    const std::string lines = Inflate(block, end_headers, stream, conceal);
    parts_.Add(block.size(), section,
               end_headers ? "header block (HPACK)" : "header block fragment (HPACK)", lines);
    // A secret the masking of the captured bytes could not see.
    if (conceal && !block.empty()) parts_.ConcealLast();
    if (padding != 0) parts_.Add(padding, section, "padding", std::to_string(padding) + " bytes");
  }

  // The header lines `block` decodes to, one per line; `conceal` set when
  // an authorization value arrived unmasked (a Huffman-coded string).
  std::string Inflate(std::string_view block, bool final, std::uint32_t stream, bool& conceal) {
    if (!inflater_) return "not decoded: no HPACK decoder";
    if (broken_) return "not decoded: an earlier header block of this direction failed to decode";
    std::string lines;
    const auto* in = reinterpret_cast<const std::uint8_t*>(block.data());
    std::size_t left = block.size();
    // Each round consumes bytes or emits a header, and a header takes at
    // least one byte.
    for (std::size_t rounds = 0; rounds <= 2 * block.size() + 2; ++rounds) {
      nghttp2_nv nv{};
      int inflate_flags = 0;
      const ssize_t used =
          nghttp2_hd_inflate_hd2(inflater_.get(), &nv, &inflate_flags, in, left, final ? 1 : 0);
      if (used < 0) {
        broken_ = true;
        if (!lines.empty()) lines += '\n';
        return lines + "HPACK error: " + nghttp2_strerror(static_cast<int>(used));
      }
      in += used;
      left -= static_cast<std::size_t>(used);
      if ((inflate_flags & NGHTTP2_HD_INFLATE_EMIT) != 0) {
        const std::string name(reinterpret_cast<const char*>(nv.name), nv.namelen);
        std::string value(reinterpret_cast<const char*>(nv.value), nv.valuelen);
        if (name == "authorization") {
          const std::size_t space = value.find(' ');
          const std::string secret = space == std::string::npos ? value : value.substr(space + 1);
          if (secret.find_first_not_of('*') != std::string::npos) conceal = true;
          value = (space == std::string::npos ? "" : value.substr(0, space + 1)) + "***";
        }
        if (request_ && name == ":path") paths_[stream] = value;
        if (!lines.empty()) lines += '\n';
        lines += EscapeText(name) + ": " + EscapeText(value);
      }
      if ((inflate_flags & NGHTTP2_HD_INFLATE_FINAL) != 0) {
        nghttp2_hd_inflate_end_headers(inflater_.get());
        break;
      }
      if ((inflate_flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && left == 0) break;
    }
    return lines;
  }

  void ReadData(std::string_view payload, std::uint8_t flags, std::uint32_t stream,
                const std::string& section) {
    std::size_t padding = 0;
    const std::size_t content = ReadPadLength(payload, flags, padding, section);
    if (content == std::string_view::npos) return;
    const std::size_t end = parts_.end() + content;
    MessageState& state = messages_[stream];
    // Every round annotates at least one byte.
    for (std::size_t rounds = 0; rounds <= content && parts_.end() < end; ++rounds) {
      const std::size_t left = end - parts_.end();
      if (state.pending != 0) {
        const std::size_t n = std::min(left, state.pending);
        state.pending -= n;
        parts_.Add(n, section, "message bytes (continued)",
                   std::to_string(n) + " bytes" +
                       (state.pending != 0 ? ", " + std::to_string(state.pending) + " to come"
                                           : ", the end of the message"));
        continue;
      }
      // The 5-byte prefix, which may itself be split over DATA frames.
      const std::size_t take = std::min(left, 5 - state.prefix.size());
      const bool split = take < 5;
      state.prefix += Next(take);
      if (state.prefix.size() < 5) {
        parts_.Add(take, section, "gRPC message prefix (part)",
                   std::to_string(state.prefix.size()) +
                       " of 5 bytes; the rest follows in the next DATA frame");
        break;
      }
      const std::string prefix = std::exchange(state.prefix, std::string());
      const bool compressed = prefix[0] != 0;
      const std::uint32_t length = BigEndian(prefix, 1, 4);
      parts_.Add(take, section, split ? "gRPC message prefix (end)" : "gRPC message prefix",
                 std::string("compressed ") + (compressed ? "yes" : "no") + ", length " +
                     std::to_string(length) + " bytes");
      const std::size_t present = std::min<std::size_t>(length, end - parts_.end());
      if (compressed || present < length) {
        state.pending = length - present;
        parts_.Add(present, section, "message bytes",
                   compressed ? "compressed: not decoded"
                              : std::to_string(present) + " of " + std::to_string(length) +
                                    " bytes; the rest follows in the next DATA frame");
        continue;
      }
      const auto path = paths_.find(stream);
      const pb::Descriptor* type =
          path != paths_.end() ? MessageType(path->second, request_) : nullptr;
      const std::size_t message_end = parts_.end() + length;
      AnnotateProtobuf(Next(length), type,
                       "protobuf " + (type != nullptr ? type->full_name() : "(type unknown)"),
                       parts_, 0);
      parts_.AddUnparsed(message_end, section);
    }
    if (padding != 0) parts_.Add(padding, section, "padding", std::to_string(padding) + " bytes");
  }

  // The next `n` bytes, from parts_.end().
  std::string_view Next(std::size_t n) const { return bytes_.substr(parts_.end(), n); }

  std::string_view bytes_;
  bool request_;
  std::map<std::uint32_t, std::string>& paths_;
  PartList parts_;
  std::unique_ptr<nghttp2_hd_inflater, InflaterDeleter> inflater_;
  bool broken_ = false;
  std::map<std::uint32_t, MessageState> messages_;
};

}  // namespace

Http2Annotation AnnotateGrpc(std::string_view request, std::string_view response) {
  std::map<std::uint32_t, std::string> paths;
  Http2Annotation out;
  out.request = Http2Reader(request, true, paths).Read();
  out.response = Http2Reader(response, false, paths).Read();
  return out;
}

}  // namespace polycrud::wire
