#include "tests/support/stack.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <stdexcept>
#include <utility>

#include "tests/support/server_process.h"

namespace polycrud::testing {
namespace {

std::string StackScript() { return Setting("POLYCRUD_STACK_SCRIPT"); }

std::string ScratchDir(const std::string& name) {
  return Setting("POLYCRUD_TEST_SCRATCH") + "/" + name;
}

void MustRun(const std::string& command) {
  if (Shell(command) != 0) throw std::runtime_error("command failed: " + command);
}

}  // namespace

int Shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

StackInstance::StackInstance(std::string kind, const std::string& name, std::string env, int port)
    : kind_(std::move(kind)),
      env_(std::move(env)),
      dir_(ScratchDir(name)),
      port_(port > 0 ? port : FreePort()) {
  Shell("rm -rf '" + dir_ + "'");
  Start();
}

StackInstance::~StackInstance() {
  Stop();
  Shell("rm -rf '" + dir_ + "'");
}

void StackInstance::Start() {
  // stack.sh takes the Redis passwords from the environment.
  setenv("POLYCRUD_REDIS_PASSWORD", Setting("POLYCRUD_TEST_REDIS_PASSWORD").c_str(), 1);
  setenv("POLYCRUD_REDIS_ADMIN_PASSWORD", Setting("POLYCRUD_TEST_REDIS_ADMIN_PASSWORD").c_str(), 1);
  MustRun(env_ + StackScript() + " " + kind_ + " start '" + dir_ + "' " + std::to_string(port_) +
          " >/dev/null");
}

void StackInstance::Signal(int signal) {
  const std::string pid_file = dir_ + (kind_ == "redis"      ? "/redis.pid"
                                       : kind_ == "rabbitmq" ? "/rabbitmq.pid"
                                                             : "/mysqld.pid");
  std::ifstream in(pid_file);
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 1) throw std::runtime_error("no pid in " + pid_file);
  if (kill(pid, signal) != 0) throw std::runtime_error("cannot signal " + pid_file);
  if (signal != SIGKILL) return;
  // Not our child: wait until /proc shows it gone or a zombie of its parent.
  for (int i = 0; i < 500; ++i) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return;
    const std::size_t paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') return;
    usleep(10'000);
  }
  throw std::runtime_error(kind_ + " survived SIGKILL");
}

void StackInstance::Stop() {
  Shell(StackScript() + " " + kind_ + " stop '" + dir_ + "' >/dev/null");
}

RedisInstance::RedisInstance(const std::string& name, const std::string& tls_dir, bool cluster)
    : StackInstance("redis", name,
                    (tls_dir.empty() ? "" : "POLYCRUD_REDIS_TLS_DIR='" + tls_dir + "' ") +
                        (cluster ? "POLYCRUD_REDIS_CLUSTER=1 " : ""),
                    // A cluster node's bus is on port + 10000 (what CLUSTER
                    // MEET assumes): that one must be free too.
                    cluster ? FreePortWithClusterBus() : 0) {}

MariadbInstance::MariadbInstance(const std::string& name, const std::string& tls_dir,
                                 std::string env, int port)
    : StackInstance("mariadb", name,
                    (tls_dir.empty() ? "" : "POLYCRUD_MARIADB_TLS_DIR='" + tls_dir + "' ") + env,
                    port) {
  // The password on stdin, as stack.sh takes it.
  MustRun("printf '%s\\n' '" + Setting("POLYCRUD_TEST_MYSQL_PASSWORD") + "' | " + StackScript() +
          " mariadb bootstrap '" + dir_ + "' " + Setting("POLYCRUD_TEST_MYSQL_DATABASE") + " " +
          Setting("POLYCRUD_TEST_MYSQL_USER") + " >/dev/null");
}

RabbitmqInstance::RabbitmqInstance(const std::string& name)
    : StackInstance("rabbitmq", name,
                    "POLYCRUD_AMQP_PASSWORD='" + Setting("POLYCRUD_TEST_AMQP_PASSWORD") +
                        "' POLYCRUD_AMQP_VHOST='" + Setting("POLYCRUD_TEST_AMQP_VHOST") + "' ",
                    FreePortRun(3)) {}

GaleraCluster::GaleraCluster(const std::string& name, int nodes) {
  // Every port of every node is chosen before any node binds one, so each
  // must differ from those already chosen: a port is only seen taken once
  // its node runs (a node once got the same port for SQL and for Galera).
  std::set<int> chosen;
  const auto fresh = [&chosen](int count) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const int first = count == 1 ? FreePort() : FreePortRun(count);
      bool clash = false;
      for (int p = first; p < first + count; ++p) clash = clash || chosen.contains(p);
      if (clash) continue;
      for (int p = first; p < first + count; ++p) chosen.insert(p);
      return first;
    }
    throw std::runtime_error("no free ports for the Galera cluster");
  };
  std::vector<int> galera_ports;  // each the first of 3: group, IST, SST
  std::vector<int> sql_ports;
  std::string peers;
  for (int i = 0; i < nodes; ++i) {
    galera_ports.push_back(fresh(3));
    peers += (i == 0 ? "" : ",") + std::string("127.0.0.1:") + std::to_string(galera_ports.back());
  }
  for (int i = 0; i < nodes; ++i) sql_ports.push_back(fresh(1));
  for (int i = 0; i < nodes; ++i) {
    const std::string env = "POLYCRUD_MARIADB_BUFFER_POOL=64M POLYCRUD_GALERA_PEERS=" + peers +
                            " POLYCRUD_GALERA_PORT=" + std::to_string(galera_ports[i]) + " ";
    nodes_.push_back(
        std::make_unique<MariadbInstance>(name + "-" + std::to_string(i + 1), "",
                                          env + (i == 0 ? "POLYCRUD_GALERA_NEW_CLUSTER=1 " : ""),
                                          sql_ports[static_cast<std::size_t>(i)]));
    // Started again later, the first node joins the others.
    nodes_.back()->set_env(env);
  }
}

redisContext* ConnectRedisAsAdmin(int port) {
  redisContext* ctx = redisConnect("127.0.0.1", port);
  if (ctx == nullptr || ctx->err != 0) {
    if (ctx != nullptr) redisFree(ctx);
    throw std::runtime_error("cannot connect to redis on port " + std::to_string(port));
  }
  const std::string password = Setting("POLYCRUD_TEST_REDIS_ADMIN_PASSWORD");
  auto* reply = static_cast<redisReply*>(
      redisCommand(ctx, "AUTH admin %b", password.data(), password.size()));
  const bool logged_in = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
  if (reply != nullptr) freeReplyObject(reply);
  if (!logged_in) {
    redisFree(ctx);
    throw std::runtime_error("cannot log in to redis on port " + std::to_string(port));
  }
  return ctx;
}

std::optional<std::string> RedisGet(int port, const std::string& key) {
  redisContext* ctx = ConnectRedisAsAdmin(port);
  auto* reply = static_cast<redisReply*>(redisCommand(ctx, "GET %b", key.data(), key.size()));
  std::optional<std::string> out;
  if (reply != nullptr && reply->type == REDIS_REPLY_STRING) out.emplace(reply->str, reply->len);
  if (reply != nullptr) freeReplyObject(reply);
  redisFree(ctx);
  return out;
}

std::vector<std::optional<std::string>> RedisMultiGet(int port,
                                                      const std::vector<std::string>& keys) {
  redisContext* ctx = ConnectRedisAsAdmin(port);
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (std::size_t at = 0; at < keys.size(); at += 1000) {
    std::vector<const char*> argv = {"MGET"};
    std::vector<std::size_t> lens = {4};
    for (std::size_t i = at; i < std::min(keys.size(), at + 1000); ++i) {
      argv.push_back(keys[i].data());
      lens.push_back(keys[i].size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
      if (reply != nullptr) freeReplyObject(reply);
      redisFree(ctx);
      throw std::runtime_error("MGET failed on redis port " + std::to_string(port));
    }
    for (std::size_t e = 0; e < reply->elements; ++e) {
      const redisReply* value = reply->element[e];
      if (value->type == REDIS_REPLY_STRING) {
        out.emplace_back(std::string(value->str, value->len));
      } else {
        out.emplace_back(std::nullopt);
      }
    }
    freeReplyObject(reply);
  }
  redisFree(ctx);
  return out;
}

int RedisCli(int port, const std::string& args) {
  setenv("REDISCLI_AUTH", Setting("POLYCRUD_TEST_REDIS_ADMIN_PASSWORD").c_str(), 1);
  return Shell("redis-cli --no-auth-warning --user admin -p " + std::to_string(port) + " " + args);
}

std::string ShellOutput(const std::string& command, const std::string& input) {
  char path[] = "/tmp/polycrud-shell-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  const bool written = write(fd, input.data(), input.size()) == static_cast<ssize_t>(input.size());
  close(fd);
  FILE* pipe = written ? popen((command + " <" + path).c_str(), "r") : nullptr;
  std::string out;
  if (pipe != nullptr) {
    std::array<char, 4096> buf{};
    while (const std::size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  }
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  unlink(path);
  if (status != 0) throw std::runtime_error("command failed: " + command);
  return out;
}

namespace {

// The output of a mariadb client command line that runs `sql`.
std::string RunMariadbClient(const std::string& command_line, const std::string& sql) {
  return ShellOutput(command_line + " -e \"" + sql + "\"");
}

}  // namespace

std::string MysqlQuery(int port, const std::string& sql) {
  // The password in the environment (MYSQL_PWD), not on the command line.
  setenv("MYSQL_PWD", Setting("POLYCRUD_TEST_MYSQL_PASSWORD").c_str(), 1);
  return RunMariadbClient("mariadb --default-character-set=utf8mb4 -N -B -h127.0.0.1 -P" +
                              std::to_string(port) + " -u" + Setting("POLYCRUD_TEST_MYSQL_USER") +
                              " " + Setting("POLYCRUD_TEST_MYSQL_DATABASE"),
                          sql);
}

std::string MysqlRootQuery(const MariadbInstance& mariadb, const std::string& sql) {
  return RunMariadbClient("mariadb --defaults-file='" + mariadb.dir() + "/my.cnf' -N -B", sql);
}

}  // namespace polycrud::testing
