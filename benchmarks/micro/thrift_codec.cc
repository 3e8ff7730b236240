// Thrift binary and compact codecs: the C++ types generated from
// idl/polycrud.thrift, written and read as whole call messages
// (writeMessageBegin + the args or result struct) through a TFramedTransport
// over a TMemoryBuffer, so the bytes are the frame the server's framed
// transport sends or receives, 4-byte length included.
#include <thrift/TConfiguration.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/transport/TBufferTransports.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "UserService.h"
#include "benchmarks/micro/wire_codec.h"
#include "clients/thrift_user_convert.h"

namespace polycrud::micro_bench {
namespace {

using ::apache::thrift::TConfiguration;
using ::apache::thrift::protocol::TMessageType;
using ::apache::thrift::protocol::TProtocol;
using ::apache::thrift::transport::TFramedTransport;
using ::apache::thrift::transport::TMemoryBuffer;

// The server's frame limit (--thrift-max-frame-bytes default, 4 MiB).
constexpr int kMaxFrameBytes = 4 * 1024 * 1024;
// A copy, so make_shared does not bind a reference to the class constant
// (which has no out-of-line definition in libthrift).
constexpr int kMaxMessageBytes = TConfiguration::DEFAULT_MAX_MESSAGE_SIZE;

// A TFramedTransport whose byte budget (TConfiguration's max message size)
// starts afresh with every message. Thrift 0.17's TFramedTransport counts the
// bytes a protocol borrow()s and consume()s (strings, compact varints) but
// never resets the count, so a transport reused for many messages fails with
// "MaxMessageSize reached" once 100 MB have been read through it.
class PerMessageFramedTransport final : public TFramedTransport {
 public:
  using TFramedTransport::TFramedTransport;
  void StartMessage() { resetConsumedMessageSize(); }
};

thrift::User ToThrift(const User& u) {
  thrift::User out;
  out.__set_id(u.id);
  out.__set_username(u.username);
  out.__set_email(u.email);
  out.__set_full_name(u.full_name);
  out.__set_version(u.version);
  out.__set_created_at_ms(u.created_at_ms);
  out.__set_updated_at_ms(u.updated_at_ms);
  return out;
}

using clients::FromThrift;  // the C++ Thrift client's own converter

std::vector<thrift::User> ToThrift(const std::vector<User>& users) {
  std::vector<thrift::User> out;
  out.reserve(users.size());
  for (const User& u : users) out.push_back(ToThrift(u));
  return out;
}

std::vector<User> FromThrift(const std::vector<thrift::User>& users) {
  std::vector<User> out;
  out.reserve(users.size());
  for (const thrift::User& u : users) out.push_back(FromThrift(u));
  return out;
}

const char* MethodName(MessageKind kind) {
  switch (kind) {
    case MessageKind::kUser:
      return "getUser";
    case MessageKind::kList100:
      return "listUsers";
    case MessageKind::kBatchRequest1000:
    case MessageKind::kBatchResponse1000:
      return "batchGetUsers";
  }
  return "";
}

template <typename Protocol>
class ThriftCodec final : public Codec {
 public:
  // The service's args/result types get their fields assigned directly: the
  // Thrift 0.17 compiler declares but does not define their __set_*().
  ThriftCodec(MessageKind kind, const MessageValue& value)
      : kind_(kind),
        out_buffer_(std::make_shared<TMemoryBuffer>()),
        out_framed_(std::make_shared<TFramedTransport>(out_buffer_)),
        out_protocol_(out_framed_),
        in_buffer_(std::make_shared<TMemoryBuffer>()),
        in_framed_(std::make_shared<PerMessageFramedTransport>(
            in_buffer_, std::make_shared<TConfiguration>(kMaxMessageBytes, kMaxFrameBytes))),
        in_protocol_(in_framed_) {
    switch (kind_) {
      case MessageKind::kUser:
        get_result_.success = ToThrift(value.users.front());
        get_result_.__isset.success = true;
        break;
      case MessageKind::kList100: {
        thrift::UserPage page;
        page.__set_users(ToThrift(value.users));
        page.__set_next_after_id(value.next_after_id);
        list_result_.success = std::move(page);
        list_result_.__isset.success = true;
        break;
      }
      case MessageKind::kBatchRequest1000:
        batch_args_.token = std::string(kSampleToken);
        batch_args_.ids = value.ids;
        batch_args_.__isset.token = batch_args_.__isset.ids = true;
        break;
      case MessageKind::kBatchResponse1000:
        batch_result_.success = ToThrift(value.users);
        batch_result_.__isset.success = true;
        break;
    }
  }

  std::size_t Encode() override {
    out_buffer_->resetBuffer();
    out_protocol_.writeMessageBegin(
        MethodName(kind_),
        IsRequest(kind_) ? ::apache::thrift::protocol::T_CALL : ::apache::thrift::protocol::T_REPLY,
        0);
    switch (kind_) {
      case MessageKind::kUser:
        get_result_.write(&out_protocol_);
        break;
      case MessageKind::kList100:
        list_result_.write(&out_protocol_);
        break;
      case MessageKind::kBatchRequest1000:
        batch_args_.write(&out_protocol_);
        break;
      case MessageKind::kBatchResponse1000:
        batch_result_.write(&out_protocol_);
        break;
    }
    out_protocol_.writeMessageEnd();
    out_framed_->writeEnd();
    out_framed_->flush();  // writes the 4-byte frame length, then the frame
    return out_buffer_->available_read();
  }

  std::string LastWire() const override {
    uint8_t* data = nullptr;
    uint32_t size = 0;
    out_buffer_->getBuffer(&data, &size);
    return std::string(reinterpret_cast<const char*>(data), size);
  }

  void Decode(std::string_view wire) override { DecodeInto(wire, nullptr); }

  MessageValue DecodeValue(std::string_view wire) override {
    MessageValue value;
    DecodeInto(wire, &value);
    return value;
  }

 private:
  // Reads one framed message; fills `out` when it is not null.
  void DecodeInto(std::string_view wire, MessageValue* out) {
    // OBSERVE: the buffer reads `wire` in place and never writes to it.
    in_buffer_->resetBuffer(reinterpret_cast<uint8_t*>(const_cast<char*>(wire.data())),
                            static_cast<uint32_t>(wire.size()), TMemoryBuffer::OBSERVE);
    in_framed_->StartMessage();
    std::string name;
    TMessageType type;
    int32_t seqid = 0;
    in_protocol_.readMessageBegin(name, type, seqid);
    const TMessageType expected_type =
        IsRequest(kind_) ? ::apache::thrift::protocol::T_CALL : ::apache::thrift::protocol::T_REPLY;
    if (name != MethodName(kind_) || type != expected_type) {
      throw std::runtime_error("unexpected Thrift message '" + name + "'");
    }
    switch (kind_) {
      case MessageKind::kUser: {
        thrift::UserService_getUser_result result;
        result.read(&in_protocol_);
        if (!result.__isset.success) throw std::runtime_error("getUser result without success");
        if (out != nullptr) out->users.push_back(FromThrift(result.success));
        break;
      }
      case MessageKind::kList100: {
        thrift::UserService_listUsers_result result;
        result.read(&in_protocol_);
        if (!result.__isset.success) throw std::runtime_error("listUsers result without success");
        if (out != nullptr) {
          out->users = FromThrift(result.success.users);
          out->next_after_id = result.success.next_after_id;
        }
        break;
      }
      case MessageKind::kBatchRequest1000: {
        thrift::UserService_batchGetUsers_args args;
        args.read(&in_protocol_);
        if (out != nullptr) {
          if (args.token != kSampleToken) throw std::runtime_error("batchGetUsers token lost");
          out->ids = std::move(args.ids);
        }
        break;
      }
      case MessageKind::kBatchResponse1000: {
        thrift::UserService_batchGetUsers_result result;
        result.read(&in_protocol_);
        if (!result.__isset.success) {
          throw std::runtime_error("batchGetUsers result without success");
        }
        if (out != nullptr) out->users = FromThrift(result.success);
        break;
      }
    }
    in_protocol_.readMessageEnd();
    in_framed_->readEnd();
  }

  MessageKind kind_;
  thrift::UserService_getUser_result get_result_;
  thrift::UserService_listUsers_result list_result_;
  thrift::UserService_batchGetUsers_args batch_args_;
  thrift::UserService_batchGetUsers_result batch_result_;
  std::shared_ptr<TMemoryBuffer> out_buffer_;
  std::shared_ptr<TFramedTransport> out_framed_;
  Protocol out_protocol_;
  std::shared_ptr<TMemoryBuffer> in_buffer_;
  std::shared_ptr<PerMessageFramedTransport> in_framed_;
  Protocol in_protocol_;
};

}  // namespace

std::unique_ptr<Codec> MakeThriftCodec(bool compact, MessageKind kind, const MessageValue& value) {
  if (compact) {
    return std::make_unique<ThriftCodec<::apache::thrift::protocol::TCompactProtocol>>(kind, value);
  }
  return std::make_unique<ThriftCodec<::apache::thrift::protocol::TBinaryProtocol>>(kind, value);
}

}  // namespace polycrud::micro_bench
