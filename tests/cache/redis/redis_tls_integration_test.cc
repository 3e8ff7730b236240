// polycrud-server's Redis connections over TLS, to a private Redis that
// serves TLS only (certificates from deploy/local/tls.sh): the fiber
// threads' connections (the Thrift face) and the pipelined ones (REST) fill
// and read the cache through TLS; a server trusting another CA reaches no
// cache and still answers from MariaDB; TLS without pipelined connections is
// refused at start.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "clients/http_connection.h"
#include "tests/support/server_process.h"
#include "tests/support/stack.h"

namespace polycrud::testing {
namespace {

namespace http = clients::http;

// `redis-cli --tls ... ARGS` as the admin user; its output, trimmed.
std::string RedisCliTls(int port, const std::string& args) {
  setenv("REDISCLI_AUTH", Setting("POLYCRUD_TEST_REDIS_ADMIN_PASSWORD").c_str(), 1);
  const std::string command = "redis-cli --no-auth-warning --tls --cacert '" + Certificates().ca() +
                              "' --user admin -h 127.0.0.1 -p " + std::to_string(port) + " " +
                              args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed");
  std::string out;
  std::array<char, 256> buffer{};
  while (const std::size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) {
    out.append(buffer.data(), n);
  }
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

gen::UserDraft Draft(const std::string& name) { return TestDraft(name, "Cached over TLS"); }

TEST(RedisTlsTest, FiberAndPipelinedConnectionsFillAndReadTheCacheOverTls) {
  RedisInstance redis("redis-tls", Certificates().dir);
  ServerProcess server({.protocols = {"thrift", "rest"},
                        .redis_port = redis.port(),
                        .extra_args = {"--redis-tls-ca", Certificates().ca()}});
  ThriftClient thrift(server.thrift_port());
  gen::User created;
  thrift->createUser(created, kAdminToken, Draft(UniqueName("rtls")));
  const std::string key = "user:" + std::to_string(created.id);
  // The create filled the entry through a fiber thread's TLS connection.
  EXPECT_EQ(RedisCliTls(redis.port(), "EXISTS " + key), "1");
  EXPECT_EQ(RedisCliTls(redis.port(), "DEL " + key), "1");
  // A REST read misses, fills through a pipelined TLS connection, then hits.
  clients::HttpConnection rest(server.port("rest"));
  const std::string target = "/v1/users/" + std::to_string(created.id);
  EXPECT_EQ(rest.Send(http::verb::get, target, std::nullopt, kAdminToken).result_int(), 200u);
  EXPECT_EQ(RedisCliTls(redis.port(), "EXISTS " + key), "1");
  gen::User fetched;
  thrift->getUser(fetched, kAdminToken, created.id);
  EXPECT_EQ(fetched, created);
  const std::string metrics = rest.Send(http::verb::get, "/metrics").body();
  EXPECT_NE(metrics.find("polycrud_cache_breaker_state 0"), std::string::npos) << metrics;
}

TEST(RedisTlsTest, AServerTrustingAnotherCaReachesNoCacheAndAnswersFromMariadb) {
  RedisInstance redis("redis-tls-other", Certificates().dir);
  ServerProcess server({.protocols = {"thrift"},
                        .redis_port = redis.port(),
                        .extra_args = {"--redis-tls-ca", Certificates("other").ca()}});
  ThriftClient thrift(server.thrift_port());
  gen::User created;
  thrift->createUser(created, kAdminToken, Draft(UniqueName("rtlso")));
  gen::User fetched;
  thrift->getUser(fetched, kAdminToken, created.id);
  EXPECT_EQ(fetched, created);
  EXPECT_EQ(RedisCliTls(redis.port(), "EXISTS user:" + std::to_string(created.id)), "0");
}

TEST(RedisTlsTest, TlsWithoutPipelinedConnectionsIsRefusedAtStart) {
  EXPECT_THROW(ServerProcess({.extra_args = {"--redis-tls-ca", Certificates().ca(),
                                             "--redis-pipelined-connections", "0"}}),
               std::runtime_error);
}

}  // namespace
}  // namespace polycrud::testing
