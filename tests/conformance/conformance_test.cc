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
#include "tests/support/server_process.h"
#include "tests/support/stack.h"

namespace polycrud::testing {
namespace {

using clients::MakeProtocolClient;
using clients::Outcome;
using clients::ProtocolClient;

// The protocols the suite runs on (each face of polycrud-server once).
std::vector<std::string> ConformanceProtocols() { return {"thrift", "grpc", "soap", "rest"}; }

// A username unique to this run.
std::string Unique(const std::string& prefix) {
  static std::atomic<int> counter{0};
  static const std::string run = std::to_string(std::random_device{}() % 1'000'000);
  return prefix + "_" + run + "_" + std::to_string(counter++);
}

UserDraft Draft(const std::string& username, const std::string& full_name = "Conformance User") {
  return UserDraft{
      .username = username, .email = username + "@example.com", .full_name = full_name};
}

// Checks an outcome's code (and the field / conflict kind where given).
template <typename T>
void ExpectCode(const Outcome<T>& out, StatusCode code, const std::string& field = "",
                ConflictKind kind = ConflictKind::kNone) {
  EXPECT_EQ(StatusCodeName(out.status.code), StatusCodeName(code)) << out.status.message;
  if (!field.empty()) {
    EXPECT_EQ(out.status.field, field);
  }
  // Protocols that cannot tell conflict kinds apart report kNone.
  if (kind != ConflictKind::kNone && out.status.conflict != ConflictKind::kNone) {
    EXPECT_EQ(static_cast<int>(out.status.conflict), static_cast<int>(kind));
  }
}

User MustCreate(ProtocolClient& c, const UserDraft& draft) {
  Outcome<User> out = c.CreateUser(kAdminToken, draft);
  EXPECT_TRUE(out.ok()) << out.status.message;
  return out.value.value_or(User{});
}

struct Scenario {
  const char* name;
  std::function<void(ProtocolClient&)> run;
};

const std::vector<Scenario>& Scenarios() {
  static const std::vector<Scenario> scenarios = {
      {"PingNeedsNoToken",
       [](ProtocolClient& c) {
         Outcome<std::string> out = c.Ping();
         ASSERT_TRUE(out.ok()) << out.status.message;
         EXPECT_EQ(out.value->rfind("polycrud ", 0), 0u) << *out.value;
       }},
      {"CrudRoundTrip",
       [](ProtocolClient& c) {
         const UserDraft draft = Draft(Unique("conf"));
         User created = MustCreate(c, draft);
         EXPECT_GT(created.id, 0);
         EXPECT_EQ(created.version, 1);
         EXPECT_EQ(created.username, draft.username);
         EXPECT_EQ(created.email, draft.email);
         EXPECT_EQ(created.created_at_ms, created.updated_at_ms);
         Outcome<User> got = c.GetUser(kReaderToken, created.id);
         ASSERT_TRUE(got.ok()) << got.status.message;
         EXPECT_EQ(*got.value, created);
         Outcome<User> updated = c.UpdateUser(
             kAdminToken, created.id, UserPatch{.full_name = "Renamed", .expected_version = 1});
         ASSERT_TRUE(updated.ok()) << updated.status.message;
         EXPECT_EQ(updated.value->version, 2);
         EXPECT_EQ(updated.value->full_name, "Renamed");
         EXPECT_EQ(updated.value->email, created.email);
         EXPECT_TRUE(c.DeleteUser(kAdminToken, created.id).ok());
         ExpectCode(c.GetUser(kReaderToken, created.id), StatusCode::kNotFound);
       }},
      {"UnicodeAndSqlLookingNamesRoundTrip",
       [](ProtocolClient& c) {
         for (const std::string& name : std::vector<std::string>{
                  "Zoë Ångström", "李小龙", "😀🚀 emoji", "O'Brien \"quoted\" <b>&amp;</b>",
                  "'; DROP TABLE users; --", "Robert'); DELETE FROM users WHERE ('1'='1",
                  std::string(128, 'x'), "\u00e9\u0301 combining"}) {
           User u = MustCreate(c, Draft(Unique("uni"), name));
           Outcome<User> got = c.GetUser(kReaderToken, u.id);
           ASSERT_TRUE(got.ok()) << got.status.message;
           EXPECT_EQ(got.value->full_name, name);
         }
       }},
      {"InvalidFieldsAreNamed",
       [](ProtocolClient& c) {
         UserDraft bad_username = Draft("Not Valid");
         ExpectCode(c.CreateUser(kAdminToken, bad_username), StatusCode::kInvalidArgument,
                    "username");
         UserDraft bad_email = Draft(Unique("bad"));
         bad_email.email = "two@@example.com";
         ExpectCode(c.CreateUser(kAdminToken, bad_email), StatusCode::kInvalidArgument, "email");
         UserDraft bad_name = Draft(Unique("bad"));
         bad_name.full_name = std::string(129, 'y');
         ExpectCode(c.CreateUser(kAdminToken, bad_name), StatusCode::kInvalidArgument, "full_name");
         ExpectCode(c.GetUser(kReaderToken, 0), StatusCode::kInvalidArgument, "id");
         ExpectCode(c.UpdateUser(kAdminToken, 1, UserPatch{}), StatusCode::kInvalidArgument);
       }},
      {"TokensAndRoles",
       [](ProtocolClient& c) {
         User u = MustCreate(c, Draft(Unique("auth")));
         ExpectCode(c.GetUser("", u.id), StatusCode::kUnauthenticated);
         ExpectCode(c.GetUser("wrong-token", u.id), StatusCode::kUnauthenticated);
         EXPECT_TRUE(c.GetUser(kReaderToken, u.id).ok());
         EXPECT_TRUE(c.ListUsers(kReaderToken, 0, 1).ok());
         ExpectCode(c.CreateUser(kReaderToken, Draft(Unique("auth"))),
                    StatusCode::kPermissionDenied);
         ExpectCode(c.UpdateUser(kReaderToken, u.id, UserPatch{.full_name = "x"}),
                    StatusCode::kPermissionDenied);
         ExpectCode(c.DeleteUser(kReaderToken, u.id), StatusCode::kPermissionDenied);
         // Authentication comes before validation.
         ExpectCode(c.GetUser("wrong-token", -5), StatusCode::kUnauthenticated);
       }},
      {"ConflictsOnDuplicatesAndVersions",
       [](ProtocolClient& c) {
         User u = MustCreate(c, Draft(Unique("dup")));
         UserDraft same_username = Draft(u.username);
         same_username.email = "other-" + u.email;
         ExpectCode(c.CreateUser(kAdminToken, same_username), StatusCode::kConflict, "",
                    ConflictKind::kDuplicate);
         UserDraft same_email = Draft(Unique("dup"));
         same_email.email = u.email;
         for (char& ch : same_email.email) ch = static_cast<char>(std::toupper(ch));
         ExpectCode(c.CreateUser(kAdminToken, same_email), StatusCode::kConflict, "",
                    ConflictKind::kDuplicate);
         ExpectCode(
             c.UpdateUser(kAdminToken, u.id, UserPatch{.full_name = "x", .expected_version = 9}),
             StatusCode::kConflict, "", ConflictKind::kVersionMismatch);
         EXPECT_TRUE(
             c.UpdateUser(kAdminToken, u.id, UserPatch{.full_name = "y", .expected_version = 1})
                 .ok());
       }},
      {"MissingUsersAreNotFound",
       [](ProtocolClient& c) {
         constexpr std::int64_t kAbsent = 8'765'432'100;
         ExpectCode(c.GetUser(kReaderToken, kAbsent), StatusCode::kNotFound);
         ExpectCode(c.UpdateUser(kAdminToken, kAbsent, UserPatch{.full_name = "x"}),
                    StatusCode::kNotFound);
         ExpectCode(c.DeleteUser(kAdminToken, kAbsent), StatusCode::kNotFound);
       }},
      {"BatchKeepsOrderAndOmitsMissing",
       [](ProtocolClient& c) {
         User a = MustCreate(c, Draft(Unique("batch")));
         User b = MustCreate(c, Draft(Unique("batch")));
         Outcome<std::vector<User>> out =
             c.BatchGetUsers(kReaderToken, {b.id, 8'765'432'100, a.id, b.id});
         ASSERT_TRUE(out.ok()) << out.status.message;
         ASSERT_EQ(out.value->size(), 3u);
         EXPECT_EQ((*out.value)[0], b);
         EXPECT_EQ((*out.value)[1], a);
         EXPECT_EQ((*out.value)[2], b);
         ExpectCode(c.BatchGetUsers(kReaderToken, {}), StatusCode::kInvalidArgument, "ids");
         ExpectCode(c.BatchGetUsers(kReaderToken, std::vector<std::int64_t>(1001, a.id)),
                    StatusCode::kInvalidArgument, "ids");
       }},
      {"ListPagesToTheEnd",
       [](ProtocolClient& c) {
         std::vector<std::int64_t> mine;
         for (int i = 0; i < 5; ++i) mine.push_back(MustCreate(c, Draft(Unique("page"))).id);
         std::int64_t after = mine.front() - 1;
         std::vector<std::int64_t> seen;
         for (int pages = 0; pages < 100'000; ++pages) {
           Outcome<UserPage> page = c.ListUsers(kReaderToken, after, 2);
           ASSERT_TRUE(page.ok()) << page.status.message;
           ASSERT_LE(page.value->users.size(), 2u);
           for (const User& u : page.value->users) seen.push_back(u.id);
           if (page.value->next_after_id == 0) break;
           after = page.value->next_after_id;
         }
         ASSERT_GE(seen.size(), mine.size());
         EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
         EXPECT_EQ(std::vector<std::int64_t>(seen.begin(), seen.begin() + 5), mine);
         ExpectCode(c.ListUsers(kReaderToken, 0, 1001), StatusCode::kInvalidArgument, "limit");
         ExpectCode(c.ListUsers(kReaderToken, -1, 10), StatusCode::kInvalidArgument, "after_id");
       }},
  };
  return scenarios;
}

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
  auto cached = [&](std::int64_t id) { return RedisGet(redis_port, "user:" + std::to_string(id)); };

  User created = MustCreate(*soap, Draft(Unique("cross"), "Crossing Faces ✓"));
  ASSERT_GT(created.id, 0);
  ASSERT_TRUE(cached(created.id).has_value());
  EXPECT_EQ(cached(created.id)->rfind("U|1|", 0), 0u);

  Outcome<User> read = grpc->GetUser(kReaderToken, created.id);
  ASSERT_TRUE(read.ok()) << read.status.message;
  EXPECT_EQ(*read.value, created);

  Outcome<User> updated = rest->UpdateUser(
      kAdminToken, created.id, UserPatch{.full_name = "Updated over REST", .expected_version = 1});
  ASSERT_TRUE(updated.ok()) << updated.status.message;
  EXPECT_EQ(updated.value->version, 2);
  EXPECT_EQ(cached(created.id)->rfind("U|2|", 0), 0u);
  Outcome<User> reread = thrift->GetUser(kReaderToken, created.id);
  ASSERT_TRUE(reread.ok());
  EXPECT_EQ(*reread.value, *updated.value);

  EXPECT_TRUE(thrift->DeleteUser(kAdminToken, created.id).ok());
  EXPECT_EQ(cached(created.id), "D|2|");
  for (ProtocolClient* c : {soap.get(), grpc.get(), rest.get(), thrift.get()}) {
    ExpectCode(c->GetUser(kReaderToken, created.id), StatusCode::kNotFound);
  }
}

}  // namespace
}  // namespace polycrud::testing
