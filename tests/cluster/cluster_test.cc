// The multi-host layout (deploy/cluster/cluster.sh) end to end, from its
// client host: the conformance scenarios on all four protocols through the
// load balancer, one record through every face with its Redis Cluster entry
// checked, the web console reaching Thrift through the balancer, and both
// servers taking their share. The layout is made by the cluster.up fixture
// (tests/cluster/CMakeLists.txt); main() moves this process into the client
// host's network namespace before any test runs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "clients/protocol_client.h"
#include "tests/conformance/scenarios.h"
#include "tests/support/server_process.h"
#include "tests/support/stack.h"

namespace polycrud::testing {
namespace {

using clients::ClientOptions;
using clients::MakeProtocolClient;
using clients::ProtocolClient;

// Where the cluster.up fixture made the layout (tests/cluster/CMakeLists.txt).
std::string ClusterDir() { return POLYCRUD_CLUSTER_TEST_DIR; }

// KEY=value lines of the layout's endpoints.env.
const std::map<std::string, std::string>& Endpoints() {
  static const std::map<std::string, std::string> endpoints = [] {
    std::map<std::string, std::string> out;
    std::ifstream in(ClusterDir() + "/endpoints.env");
    if (!in)
      throw std::runtime_error("no endpoints.env in " + ClusterDir() + ": is the layout up?");
    std::string line;
    while (std::getline(in, line)) {
      const std::size_t eq = line.find('=');
      if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
  }();
  return endpoints;
}

std::string Endpoint(const std::string& key) {
  auto it = Endpoints().find(key);
  if (it == Endpoints().end()) throw std::runtime_error("endpoints.env lacks " + key);
  return it->second;
}

// A client of `protocol` through the balancer ("web": the console).
std::unique_ptr<ProtocolClient> Through(const std::string& protocol) {
  std::string upper = protocol == "web" ? "WEB" : protocol;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return MakeProtocolClient(protocol, ClientOptions{.host = Endpoint(upper + "_HOST"),
                                                    .port = std::stoi(Endpoint(upper + "_PORT")),
                                                    .rest_prefix = protocol == "web" ? "/api" : "",
                                                    .timeout_ms = 10'000});
}

// GET key on the Redis Cluster as admin, following MOVED (redis-cli -c).
std::optional<std::string> ClusterGet(const std::string& key) {
  const std::string seed = Endpoint("REDIS_NODES").substr(0, Endpoint("REDIS_NODES").find(','));
  std::ifstream password_file(ClusterDir() + "/redis-admin-password");
  std::string password;
  std::getline(password_file, password);
  setenv("REDISCLI_AUTH", password.c_str(), 1);
  std::string out = ShellOutput("redis-cli --no-auth-warning --user admin -c -h " +
                                seed.substr(0, seed.find(':')) + " -p " +
                                seed.substr(seed.find(':') + 1) + " --raw GET '" + key + "'");
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.empty()) return std::nullopt;
  return out;
}

using ScenarioParam = std::tuple<std::string, std::size_t>;
class ClusterConformanceTest : public ::testing::TestWithParam<ScenarioParam> {};

TEST_P(ClusterConformanceTest, ThroughTheBalancer) {
  const auto& [protocol, index] = GetParam();
  std::unique_ptr<ProtocolClient> client = Through(protocol);
  Scenarios()[index].run(*client);
}

INSTANTIATE_TEST_SUITE_P(AllProtocols, ClusterConformanceTest,
                         ::testing::Combine(::testing::ValuesIn(ConformanceProtocols()),
                                            ::testing::Range<std::size_t>(0, Scenarios().size())),
                         [](const ::testing::TestParamInfo<ScenarioParam>& param) {
                           return std::get<0>(param.param) + "_" +
                                  Scenarios()[std::get<1>(param.param)].name;
                         });

TEST(ClusterTest, OneUserThroughAllFourFacesKeepsTheRedisClusterEntryCorrect) {
  auto soap = Through("soap");
  auto grpc = Through("grpc");
  auto rest = Through("rest");
  auto thrift = Through("thrift");
  // The servers' near cache may show a read the version before a write for
  // up to its lifetime (plus the checker's margin, as the fault suite's).
  const std::chrono::milliseconds stale_allowance(
      std::stoi(Endpoint("NEAR_CACHE_ENTRIES")) > 0 ? std::stoi(Endpoint("NEAR_CACHE_TTL_MS")) + 250
                                                    : 0);
  RunCrossProtocolFlow(
      *soap, *grpc, *rest, *thrift,
      [](std::int64_t id) { return ClusterGet("user:" + std::to_string(id)); }, stale_allowance);
}

TEST(ClusterTest, TheWebConsoleReachesThriftThroughTheBalancer) {
  auto web = Through("web");
  const User created = MustCreate(*web, Draft(Unique("web")));
  auto thrift = Through("thrift");
  clients::Outcome<User> read = thrift->GetUser(kReaderToken, created.id);
  ASSERT_TRUE(read.ok()) << read.status.message;
  EXPECT_EQ(*read.value, created);
}

// The REST requests each server counted (its own /metrics, asked directly).
long RestRequestsServedBy(const std::string& host_address) {
  const std::string metrics = ShellOutput("curl -s --max-time 5 http://" + host_address + ":" +
                                          Endpoint("REST_PORT") + "/metrics");
  const std::string series = R"(polycrud_requests_total{protocol="rest",operation="get_user"} )";
  const std::size_t at = metrics.find(series);
  return at == std::string::npos ? 0 : std::stol(metrics.substr(at + series.size()));
}

TEST(ClusterTest, BothServersTakeTheirShareOfCalls) {
  // app1 and app2 are the hosts after lb: SUBNET.2 and SUBNET.3.
  const std::string lb = Endpoint("REST_HOST");
  const std::string subnet = lb.substr(0, lb.rfind('.') + 1);
  const long before1 = RestRequestsServedBy(subnet + "2");
  const long before2 = RestRequestsServedBy(subnet + "3");
  auto rest = Through("rest");
  const User created = MustCreate(*rest, Draft(Unique("share")));
  for (int i = 0; i < 40; ++i) {
    // A new connection each time: the balancer picks per connection.
    ASSERT_TRUE(Through("rest")->GetUser(kReaderToken, created.id).ok());
  }
  const long served1 = RestRequestsServedBy(subnet + "2") - before1;
  const long served2 = RestRequestsServedBy(subnet + "3") - before2;
  EXPECT_EQ(served1 + served2, 40);
  EXPECT_GE(served1, 10) << "app1 served " << served1 << ", app2 " << served2;
  EXPECT_GE(served2, 10) << "app1 served " << served1 << ", app2 " << served2;
}

}  // namespace
}  // namespace polycrud::testing

// Enters the client host's network namespace (CLIENT_NETNS of endpoints.env)
// before anything else runs, unless the tests are only being listed.
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!::testing::GTEST_FLAG(list_tests)) {
    const std::string netns = polycrud::testing::Endpoint("CLIENT_NETNS");
    const int fd = open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      std::perror(("cannot enter network namespace " + netns).c_str());
      return 2;
    }
    close(fd);
  }
  return RUN_ALL_TESTS();
}
