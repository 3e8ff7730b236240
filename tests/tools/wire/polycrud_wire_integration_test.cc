// polycrud-wire end to end: one GetUser per protocol (thrift, thrift-compact,
// grpc, soap, rest) captured from a server of its own on the test stack. It
// checks the document's shape, that each direction's parts cover its bytes
// exactly once, that the token shows nowhere (neither as text nor as the hex
// of its bytes), what each protocol's annotation must show, that an error
// answer (NOT_FOUND) is a capture too, and the exit statuses.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "clients/protocol_client.h"
#include "tests/support/server_process.h"
#include "tests/support/tool_run.h"

namespace polycrud::testing {
namespace {

using nlohmann::json;

struct WireRun {
  int exit_status = -1;
  std::string output;    // stdout and stderr
  std::string document;  // the --json file, as written
  json result;           // the same, parsed
};

// Runs polycrud-wire with `args`, plus --json to a scratch file unless
// `json_file` is false. The token comes from the arguments only, never from
// the environment.
WireRun RunWire(const std::vector<std::string>& args, bool json_file = true) {
  const ToolRun tool = RunTool("env -u POLYCRUD_TOKEN '" + Setting("POLYCRUD_WIRE_BINARY") + "'",
                               args, json_file ? "--json" : "");
  WireRun run{.exit_status = tool.exit_status, .output = tool.output, .document = tool.document};
  if (!run.document.empty()) {
    run.result = json::parse(run.document, nullptr, /*allow_exceptions=*/false);
  }
  return run;
}

std::string HexOf(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += kDigits[static_cast<unsigned char>(c) >> 4];
    out += kDigits[static_cast<unsigned char>(c) & 0x0F];
  }
  return out;
}

// The token shows nowhere: not as text, not as the hex of its bytes.
void ExpectNoToken(const std::string& text) {
  EXPECT_EQ(text.find(kAdminToken), std::string::npos);
  EXPECT_EQ(text.find(HexOf(kAdminToken)), std::string::npos);
}

// One direction: `hex` is its bytes, and its parts cover them in order,
// each byte once.
void ExpectCovered(const json& direction) {
  ASSERT_TRUE(direction.is_object());
  const auto bytes = direction["bytes"].get<std::size_t>();
  EXPECT_GT(bytes, 0u);
  EXPECT_EQ(direction["hex"].get<std::string>().size(), 2 * bytes);
  std::size_t at = 0;
  for (const json& part : direction["parts"]) {
    EXPECT_EQ(part["offset"].get<std::size_t>(), at) << part.dump();
    EXPECT_GT(part["length"].get<std::size_t>(), 0u) << part.dump();
    for (const char* key : {"section", "label", "value"}) {
      EXPECT_TRUE(part[key].is_string()) << key << " in " << part.dump();
    }
    at += part["length"].get<std::size_t>();
  }
  EXPECT_EQ(at, bytes);
}

// The first part of `direction` that `match` accepts, or null.
const json* FindPart(const json& direction, const std::function<bool(const json&)>& match) {
  for (const json& part : direction["parts"]) {
    if (match(part)) return &part;
  }
  return nullptr;
}

bool Contains(const json& part, const char* key, const std::string& text) {
  return part[key].get<std::string>().find(text) != std::string::npos;
}

class PolycrudWireTest : public ::testing::TestWithParam<std::string> {
 protected:
  // Each test process starts only the server its protocol needs.
  static void SetUpTestSuite() {}
  static void TearDownTestSuite() {
    server_.reset();
    compact_server_.reset();
  }

  void SetUp() override {
    std::unique_ptr<ServerProcess>& server =
        GetParam() == "thrift-compact" ? compact_server_ : server_;
    if (!server) {
      if (GetParam() == "thrift-compact") {
        server = std::make_unique<ServerProcess>(ServerSettings{
            .protocols = {"thrift"}, .extra_args = {"--thrift-protocol", "compact"}});
      } else {
        server = std::make_unique<ServerProcess>(
            ServerSettings{.protocols = {"thrift", "grpc", "soap", "rest"}});
      }
    }
    server_used_ = server.get();
    if (username_.empty()) {
      // A user created through Thrift (binary on the full server, compact on the other).
      clients::ClientOptions options{.port = server->port("thrift")};
      auto client = clients::MakeProtocolClient(
          GetParam() == "thrift-compact" ? "thrift-compact" : "thrift", options);
      const std::string name = UniqueName("wireit");
      auto out = client->CreateUser(
          kAdminToken, {.username = name, .email = name + "@example.com", .full_name = "W"});
      ASSERT_TRUE(out.ok()) << out.status.message;
      username_ = name;
      id_ = out.value->id;
    }
  }

  int port() const {
    return server_used_->port(GetParam() == "thrift-compact" ? "thrift" : GetParam());
  }

  std::vector<std::string> Args(std::int64_t id) const {
    return {"--protocol", GetParam(), "--port",           std::to_string(port()), "--token",
            kAdminToken,  "--id",     std::to_string(id), "--timeout-ms",         "5000"};
  }

  static std::unique_ptr<ServerProcess> server_;
  static std::unique_ptr<ServerProcess> compact_server_;
  static std::string username_;
  static std::int64_t id_;
  ServerProcess* server_used_ = nullptr;
};

std::unique_ptr<ServerProcess> PolycrudWireTest::server_;
std::unique_ptr<ServerProcess> PolycrudWireTest::compact_server_;
std::string PolycrudWireTest::username_;
std::int64_t PolycrudWireTest::id_ = 0;

TEST_P(PolycrudWireTest, CapturesOneGetUserWithEveryByteAnnotated) {
  const WireRun run = RunWire(Args(id_));
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const json& r = run.result;
  ASSERT_TRUE(r.is_object()) << run.document;
  EXPECT_EQ(r["protocol"], GetParam());
  EXPECT_EQ(r["server"], "127.0.0.1:" + std::to_string(port()));
  EXPECT_EQ(r["id"], id_);
  EXPECT_EQ(r["outcome"], json({{"code", "OK"}, {"message", ""}}));
  ExpectCovered(r["request"]);
  ExpectCovered(r["response"]);
  ExpectNoToken(run.document);
  ExpectNoToken(run.output);

  const json& request = r["request"];
  const json& response = r["response"];
  const std::string id = std::to_string(id_);
  if (GetParam() == "thrift" || GetParam() == "thrift-compact") {
    EXPECT_TRUE(FindPart(request, [](const json& p) {
      return p["section"] == "message header" && p["value"] == "getUser";
    })) << request.dump(1);
    EXPECT_TRUE(FindPart(request, [&](const json& p) {
      return p["label"] == "id" && p["value"] == id;
    })) << request.dump(1);
    EXPECT_TRUE(
        FindPart(request, [](const json& p) { return p["label"] == "field 1 (string) token"; }));
    EXPECT_TRUE(FindPart(response, [&](const json& p) {
      return p["label"] == "username" && Contains(p, "value", username_) &&
             p["section"] == "struct field 0 (success): User";
    })) << response.dump(1);
  } else if (GetParam() == "grpc") {
    EXPECT_EQ(request["parts"][0]["label"], "preface");
    EXPECT_TRUE(FindPart(request, [](const json& p) {
      return Contains(p, "section", "HEADERS frame") &&
             Contains(p, "value", ":path: /polycrud.v1.UserService/GetUser") &&
             Contains(p, "value", "authorization: Bearer ***");
    })) << request.dump(1);
    EXPECT_TRUE(FindPart(request, [&](const json& p) {
      return p["section"] == "protobuf polycrud.v1.GetUserRequest" && p["label"] == "id" &&
             p["value"] == id;
    })) << request.dump(1);
    EXPECT_TRUE(FindPart(response, [&](const json& p) {
      return Contains(p, "section", "polycrud.v1.User") && Contains(p, "label", "username") &&
             Contains(p, "value", username_);
    })) << response.dump(1);
    EXPECT_TRUE(FindPart(response, [](const json& p) {
      return Contains(p, "section", "HEADERS frame") && Contains(p, "value", "grpc-status: 0");
    })) << response.dump(1);
  } else if (GetParam() == "soap") {
    EXPECT_TRUE(FindPart(request, [](const json& p) {
      return p["section"] == "SOAP envelope" && Contains(p, "value", "Envelope");
    })) << request.dump(1);
    EXPECT_TRUE(FindPart(request, [](const json& p) {
      return p["label"] == "Authorization" && p["value"] == "Bearer ***";
    })) << request.dump(1);
    EXPECT_TRUE(FindPart(response, [&](const json& p) {
      return p["section"] == "SOAP envelope" && Contains(p, "value", username_);
    })) << response.dump(1);
  } else {
    EXPECT_EQ(request["parts"][0]["label"], "request line");
    EXPECT_EQ(request["parts"][0]["value"], "GET /v1/users/" + id + " HTTP/1.1");
    EXPECT_TRUE(FindPart(request, [](const json& p) {
      return p["label"] == "Authorization" && p["value"] == "Bearer ***";
    })) << request.dump(1);
    EXPECT_TRUE(FindPart(response, [&](const json& p) {
      return p["section"] == "JSON body" && Contains(p, "value", username_);
    })) << response.dump(1);
  }
}

TEST_P(PolycrudWireTest, ANotFoundAnswerIsCapturedToo) {
  const std::int64_t missing = id_ + 1'000'000'000;
  const WireRun run = RunWire(Args(missing));
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const json& r = run.result;
  ASSERT_TRUE(r.is_object()) << run.document;
  EXPECT_EQ(r["id"], missing);
  EXPECT_EQ(r["outcome"]["code"], "NOT_FOUND") << r["outcome"].dump();
  ExpectCovered(r["request"]);
  ExpectCovered(r["response"]);
  ExpectNoToken(run.document);
  ExpectNoToken(run.output);
}

TEST_P(PolycrudWireTest, TextIsAnAnnotatedHexDumpOfBothDirections) {
  std::vector<std::string> args = Args(id_);
  args.push_back("--text");
  const WireRun run = RunWire(args, /*json_file=*/false);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  EXPECT_NE(run.output.find("\nrequest: "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("\nresponse: "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find(username_), std::string::npos) << run.output;
  ExpectNoToken(run.output);
}

INSTANTIATE_TEST_SUITE_P(Protocols, PolycrudWireTest,
                         ::testing::Values("thrift", "thrift-compact", "grpc", "soap", "rest"),
                         ProtocolParamName);

TEST(PolycrudWireExitTest, AClosedPortExitsWithOne) {
  const int port = FreePort();  // nothing listens there
  for (const char* protocol : {"thrift", "grpc", "soap", "rest"}) {
    const WireRun run =
        RunWire({"--protocol", protocol, "--port", std::to_string(port), "--token", kAdminToken});
    EXPECT_EQ(run.exit_status, 1) << protocol << ": " << run.output;
    EXPECT_NE(run.output.find("polycrud-wire: cannot connect to 127.0.0.1:" + std::to_string(port)),
              std::string::npos)
        << run.output;
    EXPECT_TRUE(run.document.empty()) << "no document";
  }
}

TEST(PolycrudWireExitTest, UsageErrorsExitWithTwo) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--protocol", "thrift", "--port", "1"},  // no token
           {"--protocol", "thrift", "--port", "1", "--token", ""},
           {"--protocol", "carrier-pigeon", "--port", "1", "--token", "t"},
           {"--protocol", "thrift", "--token", "t"},  // no port
           {"--protocol", "thrift", "--port", "1", "--token", "t", "--no-such-flag"}}) {
    const WireRun run = RunWire(args);
    std::string line;
    for (const std::string& arg : args) line += arg + " ";
    EXPECT_EQ(run.exit_status, 2) << line << ": " << run.output;
    EXPECT_TRUE(run.document.empty()) << line;
  }
  const WireRun help = RunWire({"--help"}, /*json_file=*/false);
  EXPECT_EQ(help.exit_status, 0);
  EXPECT_NE(help.output.find("TLS is not supported"), std::string::npos) << help.output;
  EXPECT_EQ(RunWire({"--version"}, /*json_file=*/false).exit_status, 0);
}

}  // namespace
}  // namespace polycrud::testing
