#include "tools/wire/thrift_wire.h"

#include <thrift/TApplicationException.h>
#include <thrift/Thrift.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/protocol/TProtocolException.h>
#include <thrift/protocol/TVirtualProtocol.h>
#include <thrift/transport/TBufferTransports.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "UserService.h"

namespace polycrud::wire {
namespace {

namespace gen = ::polycrud::thrift;
using ::apache::thrift::TApplicationException;
using ::apache::thrift::protocol::TBinaryProtocol;
using ::apache::thrift::protocol::TCompactProtocol;
using ::apache::thrift::protocol::TMessageType;
using ::apache::thrift::protocol::TProtocol;
using ::apache::thrift::protocol::TProtocolException;
using ::apache::thrift::protocol::TType;
using ::apache::thrift::protocol::TVirtualProtocol;
using ::apache::thrift::transport::TMemoryBuffer;

// Nesting deeper than this is not followed (Thrift's own default limit is 64;
// the contract nests two levels).
constexpr int kMaxDepth = 32;

// What the generated code says about one field of a struct.
struct FieldInfo {
  std::string name;
  TType type = ::apache::thrift::protocol::T_STOP;
  std::string struct_name;  // the struct it holds (directly or as elements), if any
};

// Field names by struct name, and the argument and result structs by method.
struct ThriftSchema {
  std::map<std::string, std::map<std::int16_t, FieldInfo>> structs;
  std::map<std::string, std::pair<std::string, std::string>> methods;
};

// A protocol that writes nothing and records the struct and field names the
// generated write() methods pass it.
class SchemaRecorder final : public TVirtualProtocol<SchemaRecorder> {
 public:
  explicit SchemaRecorder(ThriftSchema* schema)
      : TVirtualProtocol<SchemaRecorder>(std::make_shared<TMemoryBuffer>()), schema_(schema) {}

  uint32_t writeStructBegin(const char* name) {
    if (!stack_.empty() && stack_.back().open_field) {
      FieldInfo& field = schema_->structs[stack_.back().name][*stack_.back().open_field];
      if (field.struct_name.empty()) field.struct_name = name;
    }
    schema_->structs[name];
    stack_.push_back(Open{name, std::nullopt});
    return 0;
  }
  uint32_t writeStructEnd() {
    if (!stack_.empty()) stack_.pop_back();
    return 0;
  }
  uint32_t writeFieldBegin(const char* name, const TType type, const int16_t id) {
    if (stack_.empty()) return 0;
    FieldInfo& field = schema_->structs[stack_.back().name][id];
    field.name = name;
    field.type = type;
    stack_.back().open_field = id;
    return 0;
  }
  uint32_t writeFieldEnd() {
    if (!stack_.empty()) stack_.back().open_field.reset();
    return 0;
  }
  uint32_t writeMessageBegin(const std::string&, const TMessageType, const int32_t) { return 0; }
  uint32_t writeMessageEnd() { return 0; }
  uint32_t writeFieldStop() { return 0; }
  uint32_t writeMapBegin(const TType, const TType, const uint32_t) { return 0; }
  uint32_t writeMapEnd() { return 0; }
  uint32_t writeListBegin(const TType, const uint32_t) { return 0; }
  uint32_t writeListEnd() { return 0; }
  uint32_t writeSetBegin(const TType, const uint32_t) { return 0; }
  uint32_t writeSetEnd() { return 0; }
  uint32_t writeBool(const bool) { return 0; }
  uint32_t writeByte(const int8_t) { return 0; }
  uint32_t writeI16(const int16_t) { return 0; }
  uint32_t writeI32(const int32_t) { return 0; }
  uint32_t writeI64(const int64_t) { return 0; }
  uint32_t writeDouble(const double) { return 0; }
  uint32_t writeString(const std::string&) { return 0; }
  uint32_t writeBinary(const std::string&) { return 0; }

 private:
  struct Open {
    std::string name;
    std::optional<std::int16_t> open_field;
  };
  ThriftSchema* schema_;
  std::vector<Open> stack_;
};

// The names of getUser's argument and result structs (every alternative of
// the result union written once) and of TApplicationException.
const ThriftSchema& Schema() {
  static const ThriftSchema schema = [] {
    ThriftSchema s;
    SchemaRecorder recorder(&s);
    gen::UserService_getUser_args().write(&recorder);
    const auto write_result = [&](auto set) {
      gen::UserService_getUser_result result;
      set(result.__isset);
      result.write(&recorder);
    };
    write_result([](auto& isset) { isset.success = true; });
    write_result([](auto& isset) { isset.invalid = true; });
    write_result([](auto& isset) { isset.unauthenticated = true; });
    write_result([](auto& isset) { isset.denied = true; });
    write_result([](auto& isset) { isset.not_found = true; });
    write_result([](auto& isset) { isset.unavailable = true; });
    TApplicationException().write(&recorder);
    s.methods["getUser"] = {"UserService_getUser_args", "UserService_getUser_result"};
    return s;
  }();
  return schema;
}

std::string TypeName(TType type) {
  using namespace ::apache::thrift::protocol;
  switch (type) {
    case T_STOP:
      return "stop";
    case T_VOID:
      return "void";
    case T_BOOL:
      return "bool";
    case T_BYTE:
      return "byte";
    case T_DOUBLE:
      return "double";
    case T_I16:
      return "i16";
    case T_I32:
      return "i32";
    case T_U64:
      return "u64";
    case T_I64:
      return "i64";
    case T_STRING:
      return "string";
    case T_STRUCT:
      return "struct";
    case T_MAP:
      return "map";
    case T_SET:
      return "set";
    case T_LIST:
      return "list";
    case T_UTF8:
      return "utf8";
    case T_UTF16:
      return "utf16";
  }
  return "type " + std::to_string(static_cast<int>(type));
}

std::string MessageTypeName(TMessageType type) {
  using namespace ::apache::thrift::protocol;
  switch (type) {
    case T_CALL:
      return "CALL";
    case T_REPLY:
      return "REPLY";
    case T_EXCEPTION:
      return "EXCEPTION";
    case T_ONEWAY:
      return "ONEWAY";
  }
  return "unknown";
}

std::size_t VarintSize(std::uint64_t value) {
  std::size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

// The protocol reading `buffer`; no string or container may claim more
// bytes than the frame holds (the protocols would allocate what a bad
// length asks for before finding the bytes missing).
std::unique_ptr<TProtocol> MakeProtocol(bool compact, std::shared_ptr<TMemoryBuffer> buffer,
                                        std::size_t size) {
  const auto limit = static_cast<std::int32_t>(
      std::clamp<std::size_t>(size, 1, std::numeric_limits<std::int32_t>::max()));
  if (compact) return std::make_unique<TCompactProtocol>(std::move(buffer), limit, limit);
  return std::make_unique<TBinaryProtocol>(std::move(buffer), limit, limit, /*strict_read=*/false,
                                           /*strict_write=*/true);
}

// Reads the messages of one frame and adds their parts.
class FrameReader {
 public:
  FrameReader(std::string frame, std::size_t base, bool compact, PartList& parts)
      : frame_(std::move(frame)),
        base_(base),
        compact_(compact),
        parts_(parts),
        buffer_(std::make_shared<TMemoryBuffer>(reinterpret_cast<std::uint8_t*>(frame_.data()),
                                                static_cast<std::uint32_t>(frame_.size()))),
        protocol_(MakeProtocol(compact, buffer_, frame_.size())) {}

  void Read() {
    std::string section = "message header";
    try {
      std::string name;
      TMessageType type{};
      std::int32_t seqid = 0;
      protocol_->readMessageBegin(name, type, seqid);
      AddMessageHeader(name, type, seqid);
      const ThriftSchema& schema = Schema();
      std::string root;
      std::string role;
      if (type == ::apache::thrift::protocol::T_EXCEPTION) {
        root = "TApplicationException";
        role = "exception";
      } else if (auto it = schema.methods.find(name); it != schema.methods.end()) {
        const bool call = type == ::apache::thrift::protocol::T_CALL ||
                          type == ::apache::thrift::protocol::T_ONEWAY;
        root = call ? it->second.first : it->second.second;
        role = call ? "arguments" : "result";
      } else {
        role = type == ::apache::thrift::protocol::T_REPLY ? "result" : "arguments";
      }
      section = name + " " + role + (root.empty() ? "" : " (" + root + ")");
      ReadStruct(root, section, 0);
      protocol_->readMessageEnd();
    } catch (const std::exception& e) {
      // TException for bytes that do not decode.
      parts_.AddUnparsed(base_ + frame_.size(), section, e.what());
    }
    parts_.AddUnparsed(base_ + frame_.size(), section, "after the message");
  }

 private:
  // The offset, in the direction's bytes, of the next byte to read.
  std::size_t Position() const { return base_ + frame_.size() - buffer_->available_read(); }
  std::size_t Consumed() const { return Position() - parts_.end(); }

  // The message header as its parts where its layout is the one this
  // protocol writes, else as one part.
  void AddMessageHeader(const std::string& name, TMessageType type, std::int32_t seqid) {
    const std::string section = "message header";
    const std::size_t consumed = Consumed();
    const std::string type_text =
        MessageTypeName(type) + " (" + std::to_string(static_cast<int>(type)) + ")";
    if (compact_ && consumed == 2 + VarintSize(static_cast<std::uint32_t>(seqid)) +
                                    VarintSize(name.size()) + name.size()) {
      parts_.Add(1, section, "protocol id", "0x82 (compact)");
      parts_.Add(1, section, "version and message type", "version 1, " + type_text);
      parts_.Add(VarintSize(static_cast<std::uint32_t>(seqid)), section, "sequence id",
                 std::to_string(seqid));
      parts_.Add(VarintSize(name.size()), section, "method name length",
                 std::to_string(name.size()));
      parts_.Add(name.size(), section, "method name", name);
    } else if (!compact_ && consumed == 12 + name.size()) {
      parts_.Add(4, section, "version and message type", "strict binary (0x8001), " + type_text);
      parts_.Add(4, section, "method name length", std::to_string(name.size()));
      parts_.Add(name.size(), section, "method name", name);
      parts_.Add(4, section, "sequence id", std::to_string(seqid));
    } else if (!compact_ && consumed == 9 + name.size()) {
      parts_.Add(4, section, "method name length", std::to_string(name.size()));
      parts_.Add(name.size(), section, "method name", name);
      parts_.Add(1, section, "message type", type_text);
      parts_.Add(4, section, "sequence id", std::to_string(seqid));
    } else {
      parts_.Add(consumed, section, "message header",
                 name + ", " + type_text + ", sequence id " + std::to_string(seqid));
    }
  }

  void ReadStruct(const std::string& struct_name, const std::string& section, int depth) {
    if (depth > kMaxDepth) throw TProtocolException(TProtocolException::DEPTH_LIMIT);
    const ThriftSchema& schema = Schema();
    const auto known = schema.structs.find(struct_name);
    std::string ignored;
    protocol_->readStructBegin(ignored);
    // Every field takes at least one byte, so a frame holds at most as many.
    for (std::size_t guard = 0; guard <= frame_.size(); ++guard) {
      std::string name;
      TType type{};
      std::int16_t id = 0;
      protocol_->readFieldBegin(name, type, id);
      if (type == ::apache::thrift::protocol::T_STOP) {
        parts_.Add(Consumed(), section, "field stop", "end of struct");
        break;
      }
      const FieldInfo* info = nullptr;
      if (known != schema.structs.end()) {
        if (auto it = known->second.find(id); it != known->second.end()) info = &it->second;
      }
      const std::string field_name = info != nullptr ? info->name : "";
      parts_.Add(Consumed(), section,
                 "field " + std::to_string(id) + " (" + TypeName(type) + ")" +
                     (field_name.empty() ? "" : " " + field_name),
                 "field header: type " + TypeName(type) + ", id " + std::to_string(id));
      const std::string nested = info != nullptr ? info->struct_name : "";
      const std::string what =
          "field " + std::to_string(id) + (field_name.empty() ? "" : " (" + field_name + ")");
      ReadValue(type, field_name.empty() ? "value" : field_name, what, nested, section, depth);
      protocol_->readFieldEnd();
    }
    protocol_->readStructEnd();
  }

  // One value of `type`: a part for a scalar, or the parts of a container.
  // `label` names the value, `what` the field or element (for a nested
  // struct's section), `nested` the struct it holds, if known.
  void ReadValue(TType type, const std::string& label, const std::string& what,
                 const std::string& nested, const std::string& section, int depth) {
    using namespace ::apache::thrift::protocol;
    std::string value;
    switch (type) {
      case T_BOOL: {
        bool v = false;
        protocol_->readBool(v);
        value = v ? "true" : "false";
        break;
      }
      case T_BYTE: {
        std::int8_t v = 0;
        protocol_->readByte(v);
        value = std::to_string(v);
        break;
      }
      case T_I16: {
        std::int16_t v = 0;
        protocol_->readI16(v);
        value = std::to_string(v);
        break;
      }
      case T_I32: {
        std::int32_t v = 0;
        protocol_->readI32(v);
        value = std::to_string(v);
        break;
      }
      case T_I64: {
        std::int64_t v = 0;
        protocol_->readI64(v);
        value = std::to_string(v);
        break;
      }
      case T_DOUBLE: {
        double v = 0;
        protocol_->readDouble(v);
        value = std::to_string(v);
        break;
      }
      case T_STRING: {
        std::string v;
        protocol_->readBinary(v);
        value = Quoted(v);
        break;
      }
      case T_STRUCT:
        ReadStruct(nested, "struct " + what + (nested.empty() ? "" : ": " + nested), depth + 1);
        return;
      case T_LIST:
      case T_SET: {
        TType element{};
        std::uint32_t size = 0;
        if (type == T_LIST) {
          protocol_->readListBegin(element, size);
        } else {
          protocol_->readSetBegin(element, size);
        }
        parts_.Add(Consumed(), section, TypeName(type) + " header",
                   std::to_string(size) + " elements of type " + TypeName(element));
        // Every element takes at least one byte.
        if (size > frame_.size()) throw TProtocolException(TProtocolException::SIZE_LIMIT);
        for (std::uint32_t i = 0; i < size; ++i) {
          const std::string name = "element " + std::to_string(i);
          ReadValue(element, name, what + " " + name, nested, section, depth + 1);
        }
        if (type == T_LIST) {
          protocol_->readListEnd();
        } else {
          protocol_->readSetEnd();
        }
        return;
      }
      case T_MAP: {
        TType key{};
        TType mapped{};
        std::uint32_t size = 0;
        protocol_->readMapBegin(key, mapped, size);
        parts_.Add(Consumed(), section, "map header",
                   std::to_string(size) + " entries, " + TypeName(key) + " to " + TypeName(mapped));
        if (size > frame_.size()) throw TProtocolException(TProtocolException::SIZE_LIMIT);
        for (std::uint32_t i = 0; i < size; ++i) {
          const std::string name = "entry " + std::to_string(i);
          ReadValue(key, name + " key", what + " " + name + " key", "", section, depth + 1);
          ReadValue(mapped, name + " value", what + " " + name + " value", nested, section,
                    depth + 1);
        }
        protocol_->readMapEnd();
        return;
      }
      default:
        throw TProtocolException(TProtocolException::INVALID_DATA,
                                 "unknown type " + std::to_string(static_cast<int>(type)));
    }
    if (Consumed() == 0) {
      // A compact bool field: its value travelled in the field header.
      parts_.AppendToLast("; " + label + " = " + value);
    } else {
      parts_.Add(Consumed(), section, label, value);
    }
  }

  std::string frame_;
  std::size_t base_;
  bool compact_;
  PartList& parts_;
  std::shared_ptr<TMemoryBuffer> buffer_;
  std::unique_ptr<TProtocol> protocol_;
};

}  // namespace

std::vector<Part> AnnotateThrift(std::string_view bytes, bool compact) {
  PartList parts(bytes.size());
  // Every frame takes at least its 4-byte length.
  for (std::size_t frames = 0; frames <= bytes.size() / 4; ++frames) {
    const std::size_t at = parts.end();
    if (bytes.size() - at < 4) break;
    const auto b = [&](std::size_t i) {
      return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + i]));
    };
    const std::uint32_t length = (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
    const std::size_t present = std::min<std::size_t>(length, bytes.size() - at - 4);
    parts.Add(4, "frame", "frame length",
              std::to_string(length) + " bytes" +
                  (present < length ? " (" + std::to_string(present) + " captured)" : ""));
    if (present == 0) continue;
    FrameReader(std::string(bytes.substr(at + 4, present)), at + 4, compact, parts).Read();
  }
  return std::move(parts).Finish();
}

}  // namespace polycrud::wire
