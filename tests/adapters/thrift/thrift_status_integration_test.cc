// The status service of idl/status.thrift on the Thrift port, through
// Thrift's own multiplexed protocol as monitoring tools use it: name,
// version, aliveSince, the counters of /metrics, the status as MariaDB and
// Redis come and go and as the server drains; UserService on the same
// connection, by name and without one; an unknown service refused.
#include <gtest/gtest.h>
#include <signal.h>
#include <thrift/TApplicationException.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TMultiplexedProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "StatusService.h"
#include "UserService.h"
#include "tests/support/eventually.h"
#include "tests/support/server_process.h"
#include "tests/support/stack.h"

namespace polycrud::testing {
namespace {

using apache::thrift::TApplicationException;
using apache::thrift::protocol::TBinaryProtocol;
using apache::thrift::protocol::TMultiplexedProtocol;
using apache::thrift::protocol::TProtocol;
using apache::thrift::transport::TFramedTransport;
using apache::thrift::transport::TSocket;

std::int64_t NowS() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One connection, as a multiplexing client holds it: the status service and
// UserService by name, and UserService without a name, over one transport.
class Connection {
 public:
  explicit Connection(int port)
      : socket_(std::make_shared<TSocket>("127.0.0.1", port)),
        transport_(std::make_shared<TFramedTransport>(socket_)),
        protocol_(std::make_shared<TBinaryProtocol>(transport_)),
        status(std::make_shared<TMultiplexedProtocol>(protocol_, "StatusService")),
        users(std::make_shared<TMultiplexedProtocol>(protocol_, "UserService")),
        plain(protocol_) {
    socket_->setRecvTimeout(10'000);
    transport_->open();
  }
  ~Connection() { transport_->close(); }
  std::shared_ptr<TProtocol> protocol() const { return protocol_; }

 private:
  std::shared_ptr<TSocket> socket_;
  std::shared_ptr<TFramedTransport> transport_;
  std::shared_ptr<TProtocol> protocol_;

 public:
  gen::StatusServiceClient status;
  gen::UserServiceClient users;
  gen::UserServiceClient plain;
};

std::string Details(gen::StatusServiceClient& status) {
  std::string out;
  status.getStatusDetails(out);
  return out;
}

TEST(ThriftStatusTest, NameVersionAliveSinceAndTheCountersOfMetrics) {
  const std::int64_t before = NowS();
  ServerProcess server;
  Connection c(server.thrift_port());
  std::string name;
  c.status.getName(name);
  EXPECT_EQ(name, "polycrud-server");
  std::string version;
  c.status.getVersion(version);
  std::string pong;
  c.plain.ping(pong);
  EXPECT_FALSE(version.empty());
  EXPECT_EQ(pong, "polycrud " + version);  // Ping's "<name> <version>"
  const std::int64_t since = c.status.aliveSince();
  EXPECT_GE(since, before - 1);
  EXPECT_LE(since, NowS());
  EXPECT_EQ(c.status.getStatus(), gen::ServiceStatus::ALIVE);
  EXPECT_EQ(Details(c.status), "mysql up, redis up");

  const std::string key = "polycrud_requests_total{protocol=\"thrift\",operation=\"get_user\"}";
  std::map<std::string, std::int64_t> counters;
  c.status.getCounters(counters);
  ASSERT_TRUE(counters.contains(key)) << counters.size() << " counters, not " << key;
  EXPECT_TRUE(counters.contains("polycrud_mysql_pool_size"));
  const std::int64_t gets = counters[key];
  // Three gets of a missing user, by name and without one, on this connection.
  gen::User user;
  EXPECT_THROW(c.users.getUser(user, kReaderToken, 987'654'321), gen::NotFound);
  EXPECT_THROW(c.users.getUser(user, kReaderToken, 987'654'322), gen::NotFound);
  EXPECT_THROW(c.plain.getUser(user, kReaderToken, 987'654'323), gen::NotFound);
  EXPECT_EQ(c.status.getCounter(key), gets + 3);
  EXPECT_EQ(c.status.getCounter("no_such_counter"), 0);
  EXPECT_EQ(server.Terminate(), 0);
}

TEST(ThriftStatusTest, AnUnknownServiceIsRefusedAndTheConnectionServesOn) {
  ServerProcess server;
  Connection c(server.thrift_port());
  gen::StatusServiceClient unknown(std::make_shared<TMultiplexedProtocol>(c.protocol(), "Nope"));
  std::string out;
  try {
    unknown.getName(out);
    ADD_FAILURE() << "an unknown service answered";
  } catch (const TApplicationException& e) {
    EXPECT_EQ(e.getType(), TApplicationException::UNKNOWN_METHOD) << e.what();
  }
  c.status.getName(out);
  EXPECT_EQ(out, "polycrud-server");
}

TEST(ThriftStatusTest, WarningWhileRedisIsDownAliveOnceItIsBack) {
  RedisInstance redis("status-redis");
  ServerProcess server({.redis_port = redis.port()});
  Connection c(server.thrift_port());
  EXPECT_EQ(c.status.getStatus(), gen::ServiceStatus::ALIVE);
  redis.Stop();
  EXPECT_EQ(c.status.getStatus(), gen::ServiceStatus::WARNING);
  EXPECT_EQ(Details(c.status), "mysql up, redis down");
  redis.Start();
  EXPECT_TRUE(Eventually([&] { return c.status.getStatus() == gen::ServiceStatus::ALIVE; }));
}

TEST(ThriftStatusTest, WarningWhileMariadbIsDown) {
  MariadbInstance mariadb("status-mariadb");
  ServerProcess server({.mysql_port = mariadb.port()});
  Connection c(server.thrift_port());
  EXPECT_EQ(c.status.getStatus(), gen::ServiceStatus::ALIVE);
  mariadb.Stop();
  EXPECT_EQ(c.status.getStatus(), gen::ServiceStatus::WARNING);
  EXPECT_EQ(Details(c.status), "mysql down, redis up");
}

TEST(ThriftStatusTest, StoppingWhileDraining) {
  ServerProcess server({.extra_args = {"--drain-ms", "3000"}});
  Connection c(server.thrift_port());
  EXPECT_EQ(c.status.getStatus(), gen::ServiceStatus::ALIVE);
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  EXPECT_TRUE(Eventually([&] { return c.status.getStatus() == gen::ServiceStatus::STOPPING; }));
  EXPECT_EQ(Details(c.status), "draining");
  std::string pong;
  c.plain.ping(pong);  // still serving while it drains
  EXPECT_EQ(server.Wait(), 0);
}

}  // namespace
}  // namespace polycrud::testing
