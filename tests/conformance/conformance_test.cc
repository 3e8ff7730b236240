// One table of scenarios, run on every protocol through that protocol's real
// client (clients/protocol_client.h). The same scenario must give the
// same result everywhere; a scenario added here runs on all protocols.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "clients/protocol_client.h"
#include "tests/conformance/scenarios.h"
#include "tests/support/server_process.h"
#include "tests/support/stack.h"

namespace polycrud::testing {
namespace {

using clients::MakeProtocolClient;
using clients::Outcome;
using clients::ProtocolClient;

// One server for a whole suite, started with `Settings()`.
using ScenarioParam = std::tuple<std::string, std::size_t>;
template <ServerSettings (*Settings)()>
class OneServerSuite : public ::testing::TestWithParam<ScenarioParam> {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess(Settings()); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static inline ServerProcess* server_ = nullptr;
};

// "<protocol>_<scenario>".
std::string ScenarioName(const ::testing::TestParamInfo<ScenarioParam>& param) {
  return std::get<0>(param.param) + "_" + Scenarios()[std::get<1>(param.param)].name;
}

// Every protocol under test, in cleartext.
ServerSettings PlainServer() { return {.protocols = ConformanceProtocols()}; }
class ConformanceTest : public OneServerSuite<PlainServer> {};

TEST_P(ConformanceTest, Scenario) {
  const auto& [protocol, index] = GetParam();
  std::unique_ptr<ProtocolClient> client = MakeProtocolClient(protocol, server_->port(protocol));
  Scenarios()[index].run(*client);
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, ConformanceTest,
                         ::testing::Combine(::testing::ValuesIn(ConformanceProtocols()),
                                            ::testing::Range<std::size_t>(0, Scenarios().size())),
                         ScenarioName);

// The same table over TLS, through the clients' TLS (every protocol whose
// C++ client has it: the SOAP client's gSOAP is built without OpenSSL), with
// the host name "localhost" verified against the server's certificate.
std::vector<std::string> TlsProtocols() { return {"thrift", "grpc", "rest"}; }
ServerSettings TlsServer() {
  const TestCertificates& certs = Certificates();
  return {.protocols = TlsProtocols(),
          .extra_args = {"--tls-cert", certs.server_cert(), "--tls-key", certs.server_key()}};
}
class TlsConformanceTest : public OneServerSuite<TlsServer> {};

TEST_P(TlsConformanceTest, Scenario) {
  const auto& [protocol, index] = GetParam();
  std::unique_ptr<ProtocolClient> client =
      MakeProtocolClient(protocol, clients::ClientOptions{.host = "localhost",
                                                          .port = server_->port(protocol),
                                                          .tls = {.ca = Certificates().ca()}});
  Scenarios()[index].run(*client);
}

INSTANTIATE_TEST_SUITE_P(OverTls, TlsConformanceTest,
                         ::testing::Combine(::testing::ValuesIn(TlsProtocols()),
                                            ::testing::Range<std::size_t>(0, Scenarios().size())),
                         ScenarioName);

// A client trusting another CA gets no answer on any of them, and the SOAP
// client says it has no TLS instead of speaking cleartext.
TEST(TlsClientTest, AClientTrustingAnotherCaIsRefusedAndSoapHasNoTls) {
  ServerProcess server(TlsServer());
  for (const std::string& protocol : TlsProtocols()) {
    Outcome<std::string> pong;
    try {
      std::unique_ptr<ProtocolClient> client = MakeProtocolClient(
          protocol, clients::ClientOptions{.host = "localhost",
                                           .port = server.port(protocol),
                                           .timeout_ms = 5000,
                                           .tls = {.ca = Certificates("other").ca()}});
      pong = client->Ping();
    } catch (const std::exception&) {
      continue;  // refused while connecting
    }
    EXPECT_FALSE(pong.ok()) << protocol;
  }
  EXPECT_THROW(MakeProtocolClient("soap", clients::ClientOptions{.port = 1, .tls = {.ca = "x"}}),
               std::invalid_argument);
}

// The errors that need a broken backend, on every protocol: each case gets a
// private MariaDB and Redis it may damage and stop.
class DegradedConformanceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DegradedConformanceTest, SchemaFaultIsInternalAndDatabaseDownIsUnavailable) {
  const std::string& protocol = GetParam();
  MariadbInstance mysql("conformance-" + protocol + "-mysql");
  RedisInstance redis("conformance-" + protocol + "-redis");
  ServerProcess server(
      {.protocols = {protocol}, .mysql_port = mysql.port(), .redis_port = redis.port()});
  std::unique_ptr<ProtocolClient> c = MakeProtocolClient(protocol, server.port(protocol));
  const User u = MustCreate(*c, Draft(Unique("degraded")));

  // A fault behind the service's back: INTERNAL, with no SQL or schema text.
  MysqlQuery(mysql.port(), "ALTER TABLE users RENAME COLUMN full_name TO full_name_gone");
  Outcome<User> internal = c->GetUser(kReaderToken, u.id + 1000);  // not cached: asks MySQL
  ExpectCode(internal, StatusCode::kInternal);
  EXPECT_EQ(internal.status.message.find("full_name"), std::string::npos)
      << internal.status.message;
  EXPECT_EQ(internal.status.message.find("SELECT"), std::string::npos) << internal.status.message;
  MysqlQuery(mysql.port(), "ALTER TABLE users RENAME COLUMN full_name_gone TO full_name");

  // The database down for a write: UNAVAILABLE; the cached user is still served.
  mysql.Stop();
  ExpectCode(c->CreateUser(kAdminToken, Draft(Unique("degraded"))), StatusCode::kUnavailable);
  Outcome<User> cached = c->GetUser(kReaderToken, u.id);
  ASSERT_TRUE(cached.ok()) << cached.status.message;
  EXPECT_EQ(*cached.value, u);
}

TEST_P(DegradedConformanceTest, OverloadWhileRedisIsDownIsResourceExhausted) {
  const std::string& protocol = GetParam();
  MariadbInstance mysql("overload-" + protocol + "-mysql");
  RedisInstance redis("overload-" + protocol + "-redis");
  std::vector<std::string> protocols = {"thrift"};  // the holding read goes over Thrift
  if (protocol != "thrift") protocols.push_back(protocol);
  ServerProcess server({.protocols = protocols,
                        .mysql_port = mysql.port(),
                        .redis_port = redis.port(),
                        .extra_args = {"--fallback-read-concurrency", "1"}});
  std::unique_ptr<ProtocolClient> c = MakeProtocolClient(protocol, server.port(protocol));
  const User u = MustCreate(*c, Draft(Unique("overload")));
  redis.Stop();  // every read now goes to MySQL, one at a time

  // Another session write-locks the table for a while, so the one allowed
  // MySQL read blocks and holds its slot.
  const std::string lock_sql = "LOCK TABLES users WRITE; SELECT SLEEP(4); UNLOCK TABLES;";
  setenv("MYSQL_PWD", Setting("POLYCRUD_TEST_MYSQL_PASSWORD").c_str(), 1);
  ASSERT_EQ(
      Shell("mariadb --default-character-set=utf8mb4 -h127.0.0.1 -P" +
            std::to_string(mysql.port()) + " -u" + Setting("POLYCRUD_TEST_MYSQL_USER") + " " +
            Setting("POLYCRUD_TEST_MYSQL_DATABASE") + " -e '" + lock_sql + "' >/dev/null 2>&1 &"),
      0);
  const auto locked = [&] {
    return std::stoi(MysqlQuery(mysql.port(),
                                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
                                "INFO LIKE 'LOCK TABLES%' OR INFO LIKE 'SELECT SLEEP%'")) > 0;
  };
  for (int i = 0; i < 100 && !locked(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::thread holder(
      [&] { MakeProtocolClient("thrift", server.port("thrift"))->GetUser(kReaderToken, u.id); });
  const auto waiting = [&] {
    return std::stoi(MysqlQuery(mysql.port(),
                                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
                                "STATE LIKE 'Waiting for table%'")) > 0;
  };
  for (int i = 0; i < 200 && !waiting(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(waiting()) << "the holding read never blocked on the locked table";

  // Thrift has one exception for both codes (API.md): Unavailable.
  ExpectCode(c->GetUser(kReaderToken, u.id),
             protocol == "thrift" ? StatusCode::kUnavailable : StatusCode::kResourceExhausted);
  holder.join();
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, DegradedConformanceTest,
                         ::testing::ValuesIn(ConformanceProtocols()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           return param.param;
                         });

// One record through every face: created over SOAP, read over gRPC, updated
// over REST, deleted over Thrift, with the cache checked at every step.
TEST(CrossProtocolTest, OneUserThroughAllFourFacesKeepsTheCacheCorrect) {
  ServerProcess server({.protocols = {"thrift", "grpc", "soap", "rest"}});
  auto soap = MakeProtocolClient("soap", server.port("soap"));
  auto grpc = MakeProtocolClient("grpc", server.port("grpc"));
  auto rest = MakeProtocolClient("rest", server.port("rest"));
  auto thrift = MakeProtocolClient("thrift", server.port("thrift"));
  const int redis_port = std::stoi(Setting("POLYCRUD_TEST_REDIS_PORT"));
  RunCrossProtocolFlow(*soap, *grpc, *rest, *thrift, [&](std::int64_t id) {
    return RedisGet(redis_port, "user:" + std::to_string(id));
  });
}

}  // namespace
}  // namespace polycrud::testing
