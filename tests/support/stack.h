// Test helpers around deploy/local/stack.sh: private Redis and MariaDB
// instances a test can stop and start (degraded-mode tests), and direct
// access to Redis and MySQL to observe the service from outside.
#pragma once

#include <optional>
#include <string>

namespace polycrud::testing {

// Runs a shell command; returns its exit status.
int Shell(const std::string& command);

// A private redis-server in its own directory; started by the constructor.
class RedisInstance {
 public:
  explicit RedisInstance(const std::string& name);
  ~RedisInstance();
  int port() const { return port_; }
  void Start();
  void Stop();

 private:
  std::string dir_;
  int port_;
};

// A private MariaDB in its own directory with database polycrud_test and the
// test user; started by the constructor.
class MariadbInstance {
 public:
  explicit MariadbInstance(const std::string& name);
  ~MariadbInstance();
  int port() const { return port_; }
  void Start();
  void Stop();

 private:
  std::string dir_;
  int port_;
};

// GET key on 127.0.0.1:port; nullopt if the key does not exist.
std::optional<std::string> RedisGet(int port, const std::string& key);
// Runs SQL as the test user against polycrud_test on 127.0.0.1:port and
// returns its tab-separated output (no column names).
std::string MysqlQuery(int port, const std::string& sql);

}  // namespace polycrud::testing
