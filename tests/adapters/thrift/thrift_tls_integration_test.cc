// polycrud-server's Thrift face over TLS, end to end through Thrift's own
// TLS client (TSSLSocket), with certificates from deploy/local/tls.sh: both
// models that serve TLS, mutual TLS, and connections that never finish
// their handshake.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <thrift/transport/TTransportException.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/raw_socket.h"
#include "tests/support/server_process.h"

namespace polycrud::testing {
namespace {

using ::apache::thrift::transport::TTransportException;
using namespace std::chrono_literals;

std::vector<std::string> TlsArgs(const std::string& model, bool mutual) {
  const TestCertificates& certs = Certificates();
  std::vector<std::string> args = {"--thrift-server",   model,       "--tls-cert",
                                   certs.server_cert(), "--tls-key", certs.server_key()};
  if (mutual) {
    args.push_back("--thrift-tls-client-ca");
    args.push_back(certs.ca());
  }
  return args;
}

gen::UserDraft Draft(const std::string& name) { return TestDraft(name, "Über TLS"); }

class ThriftTlsTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ThriftTlsTest, ServesCrudToThriftsTlsClientAndNothingInCleartext) {
  ServerProcess server({.extra_args = TlsArgs(GetParam(), /*mutual=*/false)});
  const ThriftClientTls trusting{.ca = Certificates().ca()};
  ThriftClient client(server.thrift_port(), trusting);
  gen::User created;
  client->createUser(created, kAdminToken, Draft(UniqueName("tls")));
  gen::User fetched;
  client->getUser(fetched, kAdminToken, created.id);
  EXPECT_EQ(fetched, created);

  // A cleartext client gets no answer: its frame is no TLS handshake.
  std::string pong;
  EXPECT_THROW(
      {
        ThriftClient plain(server.thrift_port());
        plain->ping(pong);
      },
      TTransportException);
  // A client that trusts another CA refuses the server's certificate.
  EXPECT_THROW(
      {
        ThriftClient other(server.thrift_port(), ThriftClientTls{.ca = Certificates("other").ca()});
        other->ping(pong);
      },
      TTransportException);
  // The server goes on serving.
  ThriftClient again(server.thrift_port(), trusting);
  again->ping(pong);
  EXPECT_FALSE(pong.empty());
  EXPECT_EQ(server.Terminate(), 0);
}

TEST_P(ThriftTlsTest, MutualTlsServesOnlyClientsWithACertificateOfTheClientCa) {
  ServerProcess server({.extra_args = TlsArgs(GetParam(), /*mutual=*/true)});
  const TestCertificates& certs = Certificates();
  std::string pong;
  EXPECT_THROW(
      {
        ThriftClient anonymous(server.thrift_port(), ThriftClientTls{.ca = certs.ca()});
        anonymous->ping(pong);
      },
      TTransportException);
  const TestCertificates& stranger = Certificates("other");
  EXPECT_THROW(
      {
        ThriftClient foreign(server.thrift_port(), ThriftClientTls{.ca = certs.ca(),
                                                                   .cert = stranger.client_cert(),
                                                                   .key = stranger.client_key()});
        foreign->ping(pong);
      },
      TTransportException);
  ThriftClient admitted(
      server.thrift_port(),
      ThriftClientTls{.ca = certs.ca(), .cert = certs.client_cert(), .key = certs.client_key()});
  gen::User created;
  admitted->createUser(created, kAdminToken, Draft(UniqueName("mtls")));
  EXPECT_GT(created.id, 0);
}

INSTANTIATE_TEST_SUITE_P(Models, ThriftTlsTest, ::testing::Values("fibers", "threadpool"));

// A connection that never sends its ClientHello (or sends part of one) holds
// its descriptor only until the request timeout, like a trickled request.
TEST(ThriftTlsLimitsTest, AHandshakeThatNeverEndsIsCutOffAtTheRequestTimeout) {
  std::vector<std::string> args = TlsArgs("fibers", false);
  args.insert(args.end(), {"--thrift-request-timeout-ms", "500"});
  ServerProcess server({.extra_args = args});
  RawSocket silent(server.thrift_port());
  RawSocket partial(server.thrift_port());
  partial.Send(std::string("\x16\x03\x01\x02\x00\x01", 6));  // a ClientHello's first bytes
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(silent.ReadToClose(), "");
  EXPECT_EQ(partial.ReadToClose(), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ThriftClient client(server.thrift_port(), ThriftClientTls{.ca = Certificates().ca()});
  std::string pong;
  client->ping(pong);
  EXPECT_FALSE(pong.empty());
}

// polycrud-cli (Thrift's TSSLSocket) with --tls-ca, and with TLS=1 and
// TLS_CA in the stack folder's endpoints.env as `./polycrud up --tls` writes.
TEST(ThriftTlsCliTest, TheCliSpeaksTlsWhenToldByFlagOrByTheStackFolder) {
  ServerProcess server({.extra_args = TlsArgs("fibers", false)});
  // No stack folder but the one given (the checkout's .polycrud/ is not the test's).
  const std::string cli = Setting("POLYCRUD_CLI_BINARY") + " --stack-dir /nonexistent --token " +
                          kAdminToken + " --port " + std::to_string(server.thrift_port());
  const auto run = [](const std::string& command) {
    const int status = std::system((command + " >/dev/null 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(run(cli + " --tls-ca " + Certificates().ca() + " ping"), 0);
  EXPECT_EQ(run(cli + " ping"), 3);  // cleartext: unreachable
  EXPECT_EQ(run(cli + " --tls-ca " + Certificates("other").ca() + " ping"), 3);
  const std::string stack = Certificates().dir + "/stack";
  std::filesystem::create_directories(stack);
  std::ofstream(stack + "/endpoints.env") << "THRIFT_PORT=" << server.thrift_port()
                                          << "\nTLS=1\nTLS_CA=" << Certificates().ca() << "\n";
  std::ofstream(stack + "/admin-token") << kAdminToken << "\n";
  EXPECT_EQ(run(Setting("POLYCRUD_CLI_BINARY") + " --stack-dir " + stack + " ping"), 0);
}

TEST(ThriftTlsLimitsTest, TheNonblockingModelRefusesToStartWithTls) {
  EXPECT_THROW(ServerProcess({.extra_args = TlsArgs("nonblocking", false)}), std::runtime_error);
}

}  // namespace
}  // namespace polycrud::testing
