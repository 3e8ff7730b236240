// Test helpers around deploy/local/stack.sh: private Redis and MariaDB
// instances a test can stop and start (degraded-mode tests), and direct
// access to Redis and MySQL to observe the service from outside.
#pragma once

#include <hiredis/hiredis.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace polycrud::testing {

// Runs a shell command; returns its exit status.
int Shell(const std::string& command);
// Runs a shell command with `input` on its stdin; returns its stdout, and
// throws if it fails.
std::string ShellOutput(const std::string& command, const std::string& input = "");

// A private service instance (deploy/local/stack.sh) in its own directory and
// on its own port, started by the constructor, stopped by the destructor.
class StackInstance {
 public:
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  void Start();
  void Stop();
  // The environment words of later Start()s.
  void set_env(std::string env) { env_ = std::move(env); }
  // Sends `signal` to the running instance (its pid file names it): SIGKILL
  // (waits until it is gone; Start() brings it back), SIGSTOP, SIGCONT.
  void Signal(int signal);
  virtual ~StackInstance();
  StackInstance(const StackInstance&) = delete;
  StackInstance& operator=(const StackInstance&) = delete;

 protected:
  // `env`: VAR=value words put before stack.sh's command line; `port` 0: a
  // free one.
  StackInstance(std::string kind, const std::string& name, std::string env = "", int port = 0);

  std::string kind_;  // "redis", "mariadb" or "rabbitmq"
  std::string env_;
  std::string dir_;
  int port_;
};

// A private redis-server with the test stack's ACL users and passwords;
// with `tls_dir` (certificates of deploy/local/tls.sh) it serves TLS only,
// with `cluster` it is a Redis Cluster node (no slots yet).
class RedisInstance final : public StackInstance {
 public:
  explicit RedisInstance(const std::string& name, const std::string& tls_dir = "",
                         bool cluster = false);
};

// A private MariaDB with database polycrud_test and the test user; with
// `tls_dir` (certificates of deploy/local/tls.sh) it serves TLS only.
class MariadbInstance final : public StackInstance {
 public:
  explicit MariadbInstance(const std::string& name, const std::string& tls_dir = "",
                           std::string env = "", int port = 0);
};

// A private RabbitMQ broker with the test user, password and vhost of
// tests/support/settings.h, on a free run of three ports (AMQP, the Erlang
// distribution, epmd). Its data survives Stop() and Start().
class RabbitmqInstance final : public StackInstance {
 public:
  explicit RabbitmqInstance(const std::string& name);
};

// Private MariaDB instances on 127.0.0.1 forming one Galera cluster, the
// first node starting it and the others joining (each start returns once
// its node is synced), the test database and user on every node. A node
// killed and started again rejoins the running cluster.
class GaleraCluster {
 public:
  explicit GaleraCluster(const std::string& name, int nodes = 3);
  MariadbInstance& node(int i) { return *nodes_.at(static_cast<std::size_t>(i)); }
  int size() const { return static_cast<int>(nodes_.size()); }

 private:
  std::vector<std::unique_ptr<MariadbInstance>> nodes_;
};

// A hiredis connection to 127.0.0.1:port logged in as the admin user (the
// caller frees it with redisFree); throws if it cannot.
redisContext* ConnectRedisAsAdmin(int port);
// GET key on 127.0.0.1:port as the admin user; nullopt if the key does not
// exist.
std::optional<std::string> RedisGet(int port, const std::string& key);
// MGET of `keys` on 127.0.0.1:port as the admin user, over one connection
// in batches of 1000; nullopt for each key that does not exist.
std::vector<std::optional<std::string>> RedisMultiGet(int port,
                                                      const std::vector<std::string>& keys);
// `redis-cli ARGS` as the admin user of the Redis on 127.0.0.1:port (the
// password in the environment); its exit status.
int RedisCli(int port, const std::string& args);
// Runs SQL as the test user against polycrud_test on 127.0.0.1:port and
// returns its tab-separated output (no column names).
std::string MysqlQuery(int port, const std::string& sql);
// The same as MariaDB's root (through the Unix socket of the instance), for
// what the test user may not do (SET GLOBAL).
std::string MysqlRootQuery(const MariadbInstance& mariadb, const std::string& sql);

}  // namespace polycrud::testing
