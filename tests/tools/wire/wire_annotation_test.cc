// polycrud-wire's annotators on bytes written by the real libraries: the
// generated Thrift client and structs (binary and compact, framed), nghttp2's
// HPACK deflater with the generated protobuf messages (gRPC), and HTTP/1.1
// text. Each direction's parts must cover every byte once; names and values
// must be decoded; secrets masked; bad input must end as "unparsed bytes".
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/transport/TBufferTransports.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "UserService.h"
#include "polycrud/v1/user_service.pb.h"
#include "tools/wire/grpc_wire.h"
#include "tools/wire/http1_wire.h"
#include "tools/wire/thrift_wire.h"
#include "tools/wire/wire_parts.h"

namespace polycrud::wire {
namespace {

namespace gen = ::polycrud::thrift;
using ::apache::thrift::protocol::TBinaryProtocol;
using ::apache::thrift::protocol::TCompactProtocol;
using ::apache::thrift::protocol::TProtocol;
using ::apache::thrift::transport::TFramedTransport;
using ::apache::thrift::transport::TMemoryBuffer;

// The parts cover [0, size) in order, each byte once.
void ExpectCovers(const std::vector<Part>& parts, std::size_t size) {
  std::size_t at = 0;
  for (const Part& part : parts) {
    EXPECT_EQ(part.offset, at) << part.label;
    EXPECT_GT(part.length, 0u) << part.label;
    at = part.offset + part.length;
  }
  EXPECT_EQ(at, size);
}

const Part* Find(const std::vector<Part>& parts, const std::function<bool(const Part&)>& match) {
  for (const Part& part : parts) {
    if (match(part)) return &part;
  }
  return nullptr;
}

bool HasUnparsed(const std::vector<Part>& parts) {
  return Find(parts, [](const Part& p) { return p.label == kUnparsedLabel; }) != nullptr;
}

// What `write` writes to a framed transport, with the binary or compact protocol.
std::string Framed(bool compact, const std::function<void(TProtocol&)>& write) {
  auto memory = std::make_shared<TMemoryBuffer>();
  auto framed = std::make_shared<TFramedTransport>(memory);
  std::unique_ptr<TProtocol> protocol;
  if (compact) {
    protocol = std::make_unique<TCompactProtocol>(framed);
  } else {
    protocol = std::make_unique<TBinaryProtocol>(framed);
  }
  write(*protocol);
  framed->flush();
  return memory->getBufferAsString();
}

std::string GetUserCall(bool compact) {
  return Framed(compact, [](TProtocol& protocol) {
    auto shared = std::shared_ptr<TProtocol>(&protocol, [](TProtocol*) {});
    gen::UserServiceClient(shared).send_getUser("****", 42);
  });
}

std::string GetUserReply(bool compact) {
  return Framed(compact, [](TProtocol& protocol) {
    gen::UserService_getUser_result result;
    result.success.id = 42;
    result.success.username = "ada";
    result.success.email = "ada@example.com";
    result.success.full_name = "Ada Lovelace";
    result.success.version = 3;
    result.__isset.success = true;
    protocol.writeMessageBegin("getUser", ::apache::thrift::protocol::T_REPLY, 0);
    result.write(&protocol);
    protocol.writeMessageEnd();
  });
}

class ThriftWireTest : public ::testing::TestWithParam<bool> {};

TEST_P(ThriftWireTest, CallShowsFrameHeaderAndNamedFields) {
  const std::string bytes = GetUserCall(GetParam());
  const std::vector<Part> parts = AnnotateThrift(bytes, GetParam());
  ExpectCovers(parts, bytes.size());
  EXPECT_FALSE(HasUnparsed(parts));
  ASSERT_FALSE(parts.empty());
  EXPECT_EQ(parts[0].label, "frame length");
  EXPECT_EQ(parts[0].length, 4u);
  EXPECT_TRUE(Find(parts, [](const Part& p) {
    return p.section == "message header" && p.label == "method name" && p.value == "getUser";
  }));
  EXPECT_TRUE(Find(parts, [](const Part& p) { return p.label == "field 1 (string) token"; }));
  EXPECT_TRUE(Find(parts, [](const Part& p) { return p.label == "field 2 (i64) id"; }));
  EXPECT_TRUE(Find(parts, [](const Part& p) { return p.label == "id" && p.value == "42"; }));
  EXPECT_TRUE(Find(parts, [](const Part& p) { return p.label == "field stop"; }));
}

TEST_P(ThriftWireTest, ReplyShowsTheUserAsANestedStruct) {
  const std::string bytes = GetUserReply(GetParam());
  const std::vector<Part> parts = AnnotateThrift(bytes, GetParam());
  ExpectCovers(parts, bytes.size());
  EXPECT_FALSE(HasUnparsed(parts));
  EXPECT_TRUE(Find(parts, [](const Part& p) { return p.label == "field 0 (struct) success"; }));
  const Part* username = Find(parts, [](const Part& p) { return p.label == "username"; });
  ASSERT_NE(username, nullptr);
  EXPECT_EQ(username->value, "\"ada\"");
  EXPECT_EQ(username->section, "struct field 0 (success): User");
}

TEST_P(ThriftWireTest, CutOffAndGarbageBytesAreUnparsedNotThrown) {
  // A frame cut off: what arrived is annotated, and its length says so.
  const std::string reply = GetUserReply(GetParam());
  const std::string cut = reply.substr(0, reply.size() - 7);
  std::vector<Part> parts = AnnotateThrift(cut, GetParam());
  ExpectCovers(parts, cut.size());
  ASSERT_FALSE(parts.empty());
  EXPECT_EQ(parts[0].value, std::to_string(reply.size() - 4) + " bytes (" +
                                std::to_string(cut.size() - 4) + " captured)");
  // Bytes that are no Thrift message, or too few for a frame length.
  for (const std::string& bytes :
       {std::string("\x00\x00\x00\x05garbage!", 12),
        std::string("\x00\x00\x00\x05\x7f\xff\xff\xff!", 9), std::string("\x01\x02", 2)}) {
    parts = AnnotateThrift(bytes, GetParam());
    ExpectCovers(parts, bytes.size());
    EXPECT_TRUE(HasUnparsed(parts));
  }
  EXPECT_TRUE(AnnotateThrift("", GetParam()).empty());
}

INSTANTIATE_TEST_SUITE_P(Protocols, ThriftWireTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "compact" : "binary";
                         });

// HTTP/2 frames as a gRPC peer writes them, with nghttp2's HPACK deflater.
class Http2Writer {
 public:
  Http2Writer() { nghttp2_hd_deflate_new(&deflater_, 4096); }
  ~Http2Writer() { nghttp2_hd_deflate_del(deflater_); }
  Http2Writer(const Http2Writer&) = delete;
  Http2Writer& operator=(const Http2Writer&) = delete;

  static std::string Frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
                           const std::string& payload) {
    std::string out;
    const auto length = static_cast<std::uint32_t>(payload.size());
    for (const std::uint32_t byte : {length >> 16, length >> 8, length}) {
      out += static_cast<char>(byte & 0xFF);
    }
    out += static_cast<char>(type);
    out += static_cast<char>(flags);
    for (const int shift : {24, 16, 8, 0}) out += static_cast<char>((stream >> shift) & 0xFF);
    return out + payload;
  }

  std::string Block(const std::vector<std::pair<std::string, std::string>>& headers) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [name, value] : headers) {
      nva.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                     reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
                     value.size(), NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(deflater_, nva.data(), nva.size()), '\0');
    const ssize_t n = nghttp2_hd_deflate_hd(deflater_, reinterpret_cast<std::uint8_t*>(out.data()),
                                            out.size(), nva.data(), nva.size());
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
  }

  static std::string GrpcMessage(const std::string& message) {
    std::string out(1, '\0');
    const auto length = static_cast<std::uint32_t>(message.size());
    for (const int shift : {24, 16, 8, 0}) out += static_cast<char>((length >> shift) & 0xFF);
    return out + message;
  }

 private:
  nghttp2_hd_deflater* deflater_ = nullptr;
};

std::string GrpcRequest(const std::string& authorization) {
  Http2Writer writer;
  v1::GetUserRequest request;
  request.set_id(42);
  return "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
         Http2Writer::Frame(0x4, 0, 0, std::string("\x00\x03\x00\x00\x00\x64", 6)) +
         Http2Writer::Frame(0x1, 0x4, 1,
                            writer.Block({{":method", "POST"},
                                          {":scheme", "http"},
                                          {":path", "/polycrud.v1.UserService/GetUser"},
                                          {":authority", "127.0.0.1"},
                                          {"content-type", "application/grpc"},
                                          {"authorization", authorization}})) +
         Http2Writer::Frame(0x0, 0x1, 1, Http2Writer::GrpcMessage(request.SerializeAsString()));
}

std::string GrpcResponse(bool split_data) {
  Http2Writer writer;
  v1::GetUserResponse response;
  response.mutable_user()->set_id(42);
  response.mutable_user()->set_username("ada");
  response.mutable_user()->set_version(3);
  const std::string message = Http2Writer::GrpcMessage(response.SerializeAsString());
  std::string data;
  if (split_data) {
    data = Http2Writer::Frame(0x0, 0, 1, message.substr(0, 3)) +
           Http2Writer::Frame(0x0, 0, 1, message.substr(3, 9)) +
           Http2Writer::Frame(0x0, 0, 1, message.substr(12));
  } else {
    data = Http2Writer::Frame(0x0, 0, 1, message);
  }
  return Http2Writer::Frame(0x4, 0x1, 0, "") +
         Http2Writer::Frame(
             0x1, 0x4, 1,
             writer.Block({{":status", "200"}, {"content-type", "application/grpc"}})) +
         data +
         Http2Writer::Frame(0x1, 0x5, 1,
                            writer.Block({{"grpc-status", "0"}, {"grpc-message", ""}})) +
         Http2Writer::Frame(0x8, 0, 0, std::string("\x00\x00\x01\x00", 4)) +
         Http2Writer::Frame(0x6, 0x1, 0, std::string(8, '\x07'));
}

TEST(GrpcWireTest, RequestShowsPrefaceFramesHeadersAndProtobufFields) {
  const std::string request = GrpcRequest("Bearer ****");
  const Http2Annotation annotation = AnnotateGrpc(request, "");
  const std::vector<Part>& parts = annotation.request;
  ExpectCovers(parts, request.size());
  EXPECT_FALSE(HasUnparsed(parts));
  ASSERT_FALSE(parts.empty());
  EXPECT_EQ(parts[0].label, "preface");
  EXPECT_EQ(parts[0].length, 24u);
  EXPECT_TRUE(Find(parts, [](const Part& p) {
    return p.section == "SETTINGS frame (stream 0)" && p.label == "frame header" &&
           p.value == "length 6, type SETTINGS (0x4), flags 0x0, stream 0";
  }));
  EXPECT_TRUE(Find(parts, [](const Part& p) {
    return p.label == "setting" && p.value == "MAX_CONCURRENT_STREAMS (0x3) = 100";
  }));
  const Part* block = Find(parts, [](const Part& p) { return p.label == "header block (HPACK)"; });
  ASSERT_NE(block, nullptr);
  EXPECT_NE(block->value.find(":path: /polycrud.v1.UserService/GetUser"), std::string::npos);
  EXPECT_NE(block->value.find("authorization: Bearer ***"), std::string::npos);
  EXPECT_FALSE(block->conceal);
  EXPECT_TRUE(Find(parts, [](const Part& p) {
    return p.label == "gRPC message prefix" && p.value == "compressed no, length 2 bytes";
  }));
  EXPECT_TRUE(Find(parts, [](const Part& p) {
    return p.section == "protobuf polycrud.v1.GetUserRequest" && p.label == "field 1 (varint) id";
  }));
  EXPECT_TRUE(Find(parts, [](const Part& p) {
    return p.section == "protobuf polycrud.v1.GetUserRequest" && p.label == "id" && p.value == "42";
  }));
}

TEST(GrpcWireTest, AnUnmaskedHuffmanCodedTokenIsConcealed) {
  const Http2Annotation annotation = AnnotateGrpc(GrpcRequest("Bearer secret-token-value"), "");
  const Part* block =
      Find(annotation.request, [](const Part& p) { return p.label == "header block (HPACK)"; });
  ASSERT_NE(block, nullptr);
  EXPECT_TRUE(block->conceal);
  EXPECT_EQ(block->value.find("secret"), std::string::npos);
  EXPECT_NE(block->value.find("authorization: Bearer ***"), std::string::npos);
}

TEST(GrpcWireTest, ResponseShowsTheUserTheTrailersAndControlFrames) {
  for (const bool split : {false, true}) {
    const std::string response = GrpcResponse(split);
    const Http2Annotation annotation = AnnotateGrpc(GrpcRequest("Bearer ****"), response);
    const std::vector<Part>& parts = annotation.response;
    ExpectCovers(parts, response.size());
    EXPECT_FALSE(HasUnparsed(parts));
    EXPECT_TRUE(Find(parts, [](const Part& p) {
      return p.label == "frame header" && p.value.find("flags 0x1 (ACK)") != std::string::npos;
    }));
    EXPECT_TRUE(Find(parts, [](const Part& p) {
      return p.label == "header block (HPACK)" &&
             p.value.find("grpc-status: 0") != std::string::npos &&
             p.section == "HEADERS frame (stream 1)";
    }));
    EXPECT_TRUE(Find(parts, [](const Part& p) {
      return p.label == "window size increment" && p.value == "256";
    }));
    EXPECT_TRUE(Find(parts, [](const Part& p) {
      return p.label == "opaque data" && p.value == "0x0707070707070707";
    }));
    const Part* username =
        Find(parts, [](const Part& p) { return p.label == "username (3 bytes)"; });
    if (split) {
      // A message split over DATA frames is shown as its pieces.
      EXPECT_EQ(username, nullptr);
      EXPECT_TRUE(
          Find(parts, [](const Part& p) { return p.label == "message bytes (continued)"; }));
    } else {
      ASSERT_NE(username, nullptr);
      EXPECT_EQ(username->value, "\"ada\"");
      EXPECT_EQ(username->section, "message field 1 (user): polycrud.v1.User");
    }
  }
}

TEST(GrpcWireTest, CutOffAndGarbageBytesAreUnparsedNotThrown) {
  const std::string request = GrpcRequest("Bearer ****");
  for (const std::string& bytes :
       {request.substr(0, request.size() - 3), request.substr(0, 30), std::string(100, '\xff')}) {
    const Http2Annotation annotation = AnnotateGrpc(bytes, bytes);
    ExpectCovers(annotation.request, bytes.size());
    ExpectCovers(annotation.response, bytes.size());
  }
}

TEST(Http1WireTest, RequestHeadIsOneLinePerPartWithTheTokenMasked) {
  const std::string request =
      "GET /v1/users/7 HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nAuthorization: Bearer abc\r\n\r\n";
  const std::vector<Part> parts = AnnotateHttp1(request, true, "JSON body");
  ExpectCovers(parts, request.size());
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0].label, "request line");
  EXPECT_EQ(parts[0].value, "GET /v1/users/7 HTTP/1.1");
  EXPECT_EQ(parts[0].section, "HTTP request head");
  EXPECT_EQ(parts[1].label, "Host");
  EXPECT_EQ(parts[2].label, "Authorization");
  EXPECT_EQ(parts[2].value, "Bearer ***");
  EXPECT_EQ(parts[3].label, "end of head");
}

TEST(Http1WireTest, BodiesByLengthAndByChunks) {
  const std::string sized = "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n{\"id\":7,\"a\":1}";
  std::vector<Part> parts = AnnotateHttp1(sized, false, "JSON body");
  ExpectCovers(parts, sized.size());
  EXPECT_FALSE(HasUnparsed(parts));
  ASSERT_FALSE(parts.empty());
  EXPECT_EQ(parts.back().section, "JSON body");
  EXPECT_EQ(parts.back().label, "body (14 bytes)");
  EXPECT_EQ(parts.back().value, "{\"id\":7,\"a\":1}");

  const std::string chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
  parts = AnnotateHttp1(chunked, false, "SOAP envelope");
  ExpectCovers(parts, chunked.size());
  EXPECT_FALSE(HasUnparsed(parts));
  std::vector<std::string> labels;
  for (const Part& part : parts) {
    if (part.section == "SOAP envelope") labels.push_back(part.label);
  }
  EXPECT_EQ(labels, (std::vector<std::string>{"chunk size", "chunk data", "end of chunk",
                                              "chunk size", "end of chunks"}));
}

TEST(Http1WireTest, AHeadThatNeverEndsIsUnparsed) {
  const std::string bytes = "GET / HTTP/1.1\r\nHost: x";
  const std::vector<Part> parts = AnnotateHttp1(bytes, true, "JSON body");
  ExpectCovers(parts, bytes.size());
  EXPECT_TRUE(HasUnparsed(parts));
}

TEST(WirePartsTest, EscapeTextShowsControlBytesAndKeepsUtf8) {
  EXPECT_EQ(EscapeText("a\r\n\x01\xc3\xa9"), "a\\r\\n\\x01\xc3\xa9");
  EXPECT_EQ(EscapeText("a\r\n", /*keep_line_breaks=*/true), "a\r\n");
  EXPECT_EQ(Hex(std::string("\x00\xff", 2)), "00ff");
  EXPECT_EQ(HexNumber(255), "0xff");
}

}  // namespace
}  // namespace polycrud::wire
