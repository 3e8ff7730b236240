// polycrud-server's Thrift face over TLS, end to end through Thrift's own
// TLS client (TSSLSocket), with certificates from deploy/local/tls.sh: both
// models that serve TLS, mutual TLS, and connections that never finish
// their handshake.
#include <gtest/gtest.h>
#include <thrift/transport/TTransportException.h>

#include <chrono>
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

gen::UserDraft Draft(const std::string& name) {
  gen::UserDraft d;
  d.username = name;
  d.email = name + "@example.com";
  d.full_name = "Über TLS";
  return d;
}

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

TEST(ThriftTlsLimitsTest, TheNonblockingModelRefusesToStartWithTls) {
  EXPECT_THROW(ServerProcess({.extra_args = TlsArgs("nonblocking", false)}), std::runtime_error);
}

}  // namespace
}  // namespace polycrud::testing
