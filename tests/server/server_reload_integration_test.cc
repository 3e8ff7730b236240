// SIGHUP (systemd's ExecReload) on a running polycrud-server: the token
// hashes, the log level and the TLS certificates change, read again from
// the same configuration file, hash file and certificate files, while a
// connection opened before goes on; settings that fail their checks change
// nothing, a certificate that fails to load leaves the one in use; a
// setting that needs a restart is named.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "clients/protocol_client.h"
#include "core/sha256_token_verifier.h"
#include "tests/support/server_process.h"
#include "tests/support/settings.h"

namespace polycrud::testing {
namespace {

namespace fs = std::filesystem;

// Writes `text` to `path` the way an operator's tooling should: a new file
// renamed over the old one.
void Replace(const std::string& path, const std::string& text) {
  const std::string next = path + ".next";
  std::ofstream(next) << text;
  fs::rename(next, path);
}
void ReplaceWithCopy(const std::string& path, const std::string& from) {
  fs::copy_file(from, path + ".next", fs::copy_options::overwrite_existing);
  fs::rename(path + ".next", path);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Waits up to 10 s for `needle` in the log (past `from` bytes).
bool LogShows(const ServerProcess& server, const std::string& needle, std::size_t from = 0) {
  for (int i = 0; i < 500; ++i) {
    const std::string log = ReadAll(server.log_path());
    if (log.size() > from && log.find(needle, from) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Whether a `protocol` client that trusts `ca` reaches the server and pings.
bool Trusts(const std::string& protocol, int port, const std::string& ca) {
  try {
    auto client = clients::MakeProtocolClient(
        protocol, clients::ClientOptions{.port = port, .timeout_ms = 3000, .tls = {.ca = ca}});
    return client->Ping().ok();
  } catch (const std::exception&) {
    return false;
  }
}

// Sends bytes that are not TLS to `port`: the handshake fails, which the
// server logs at debug level only.
void SendNotTls(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
    const char hello[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)!send(fd, hello, sizeof hello - 1, MSG_NOSIGNAL);
    char buf[64];
    (void)!recv(fd, buf, sizeof buf, 0);  // until the server closes
  }
  close(fd);
}

class ServerReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = Setting("POLYCRUD_TEST_SCRATCH") + "/" + UniqueName("reload");
    fs::create_directories(dir_);
    fs::copy_file(first_.server_cert(), cert());
    fs::copy_file(first_.server_key(), key());
    Replace(tokens(), Sha256TokenVerifier::HashHex("token-before") + "\n");
    Replace(conf(), "log-level = info\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<ServerProcess> Start() {
    return std::make_unique<ServerProcess>(
        ServerSettings{.protocols = {"thrift", "grpc", "rest"},
                       .extra_args = {"--config", conf(), "--admin-token-sha256-file", tokens(),
                                      "--tls-cert", cert(), "--tls-key", key()}});
  }

  std::string cert() const { return dir_ + "/server.pem"; }
  std::string key() const { return dir_ + "/server.key"; }
  std::string tokens() const { return dir_ + "/admin.sha256"; }
  std::string conf() const { return dir_ + "/server.conf"; }

  const TestCertificates& first_ = Certificates("reload-first");
  const TestCertificates& second_ = Certificates("reload-second");
  std::string dir_;
};

StatusCode GetCode(clients::ProtocolClient& client, const std::string& token) {
  return client.GetUser(token, 1).status.code;
}

TEST_F(ServerReloadTest, TokensLogLevelAndCertificatesChangeAndOpenConnectionsStay) {
  std::unique_ptr<ServerProcess> server = Start();
  const int thrift = server->port("thrift");
  const int rest = server->port("rest");
  const int grpc = server->port("grpc");
  auto kept = clients::MakeProtocolClient(
      "thrift", clients::ClientOptions{.port = thrift, .tls = {.ca = first_.ca()}});
  EXPECT_NE(GetCode(*kept, "token-before"), StatusCode::kUnauthenticated);
  EXPECT_EQ(GetCode(*kept, "token-after"), StatusCode::kUnauthenticated);
  SendNotTls(rest);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(ReadAll(server->log_path()).find("TLS handshake failed"), std::string::npos)
      << "debug lines at level info";

  ReplaceWithCopy(cert(), second_.server_cert());
  ReplaceWithCopy(key(), second_.server_key());
  Replace(tokens(), Sha256TokenVerifier::HashHex("token-after") + "\n");
  Replace(conf(), "log-level = debug\nredis-timeout-ms = 400\n");
  const std::size_t before = ReadAll(server->log_path()).size();
  ASSERT_EQ(kill(server->pid(), SIGHUP), 0);
  ASSERT_TRUE(LogShows(*server, "reloaded:", before)) << ReadAll(server->log_path());

  // The connection opened before is still there, and its calls are checked
  // against the new tokens.
  EXPECT_EQ(GetCode(*kept, "token-before"), StatusCode::kUnauthenticated);
  EXPECT_NE(GetCode(*kept, "token-after"), StatusCode::kUnauthenticated);
  EXPECT_TRUE(kept->Ping().ok());
  // New handshakes present the new certificate.
  EXPECT_TRUE(Trusts("thrift", thrift, second_.ca()));
  EXPECT_FALSE(Trusts("thrift", thrift, first_.ca()));
  EXPECT_TRUE(Trusts("rest", rest, second_.ca()));
  EXPECT_FALSE(Trusts("rest", rest, first_.ca()));
  // gRPC's face takes the files when it next looks at them (every 5 s).
  bool grpc_took_it = false;
  for (int i = 0; i < 30 && !grpc_took_it; ++i) {
    grpc_took_it = Trusts("grpc", grpc, second_.ca());
    if (!grpc_took_it) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_TRUE(grpc_took_it);
  EXPECT_FALSE(Trusts("grpc", grpc, first_.ca()));
  // Debug lines now.
  SendNotTls(rest);
  EXPECT_TRUE(LogShows(*server, "TLS handshake failed", before));
  // What a reload cannot change is named.
  EXPECT_TRUE(LogShows(*server, "in force after a restart: redis-timeout-ms", before));
  EXPECT_EQ(server->Terminate(), 0);
}

TEST_F(ServerReloadTest, BadSettingsChangeNothingAndABadCertificateLeavesTheOneInUse) {
  std::unique_ptr<ServerProcess> server = Start();
  const int thrift = server->port("thrift");
  auto kept = clients::MakeProtocolClient(
      "thrift", clients::ClientOptions{.port = thrift, .tls = {.ca = first_.ca()}});

  // A hash file with something that is not a hash: nothing changes.
  Replace(tokens(), "not-a-sha256\n" + Sha256TokenVerifier::HashHex("token-after") + "\n");
  Replace(conf(), "log-level = debug\n");
  std::size_t before = ReadAll(server->log_path()).size();
  ASSERT_EQ(kill(server->pid(), SIGHUP), 0);
  ASSERT_TRUE(LogShows(*server, "nothing changed", before)) << ReadAll(server->log_path());
  EXPECT_NE(GetCode(*kept, "token-before"), StatusCode::kUnauthenticated);
  EXPECT_EQ(GetCode(*kept, "token-after"), StatusCode::kUnauthenticated);
  SendNotTls(server->port("rest"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(ReadAll(server->log_path()).find("TLS handshake failed", before), std::string::npos)
      << "the log level changed";

  // Good tokens, but a key that does not match the certificate: the tokens
  // change, the certificate in use stays.
  Replace(tokens(), Sha256TokenVerifier::HashHex("token-after") + "\n");
  ReplaceWithCopy(key(), second_.server_key());
  before = ReadAll(server->log_path()).size();
  ASSERT_EQ(kill(server->pid(), SIGHUP), 0);
  ASSERT_TRUE(LogShows(*server, "reloaded:", before)) << ReadAll(server->log_path());
  EXPECT_TRUE(LogShows(*server, "in use stays", before));
  EXPECT_NE(GetCode(*kept, "token-after"), StatusCode::kUnauthenticated);
  EXPECT_TRUE(Trusts("thrift", thrift, first_.ca()));
  EXPECT_TRUE(Trusts("rest", server->port("rest"), first_.ca()));
  EXPECT_EQ(server->Terminate(), 0);
}

}  // namespace
}  // namespace polycrud::testing
