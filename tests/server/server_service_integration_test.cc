// What a service manager and a log shipper see of polycrud-server: the
// readiness and stopping notifications of Type=notify units (sd_notify,
// received here on a socket of the test's own, as systemd would), and log
// lines that are each one JSON object with --log-format json, the audit
// log's included; a second server on a port in use refuses to start.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/server_process.h"
#include "tests/support/settings.h"
#include "tests/support/stack.h"

namespace polycrud::testing {
namespace {

// A Unix datagram socket bound at a path: the NOTIFY_SOCKET of a server.
class NotifySocket {
 public:
  NotifySocket() : path_(Setting("POLYCRUD_TEST_SCRATCH") + "/notify-" + std::to_string(getpid())) {
    unlink(path_.c_str());
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof address.sun_path - 1);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      throw std::runtime_error("cannot bind " + path_);
    }
  }
  ~NotifySocket() {
    close(fd_);
    unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  // The next datagram within `timeout_ms`; empty if none came.
  std::string Next(int timeout_ms) {
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, timeout_ms) != 1) return "";
    char buf[4096];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
};

TEST(ServerServiceTest, TellsTheServiceManagerWhenReadyAndWhenStopping) {
  NotifySocket notify;
  ServerProcess server({.extra_env = {{"NOTIFY_SOCKET", notify.path()}}});
  // The server counts as started once its port is open; READY=1 follows
  // every face listening.
  const std::string ready = notify.Next(10'000);
  EXPECT_NE(ready.find("READY=1"), std::string::npos) << ready;
  EXPECT_NE(ready.find("STATUS=serving"), std::string::npos) << ready;
  EXPECT_EQ(notify.Next(200), "");  // nothing more while it serves
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  const std::string stopping = notify.Next(10'000);
  EXPECT_NE(stopping.find("STOPPING=1"), std::string::npos) << stopping;
  EXPECT_EQ(server.Wait(), 0);
}

TEST(ServerServiceTest, JsonLogLinesAreEachOneObjectAuditIncluded) {
  std::string log_path;
  {
    ServerProcess server({.extra_args = {"--log-format", "json"}});
    log_path = server.log_path();
    ThriftClient client(server.thrift_port());
    gen::UserDraft draft;
    draft.username = UniqueName("jsonlog");
    draft.email = draft.username + "@example.com";
    draft.full_name = "Json \"Log\" \xC3\xA9";
    gen::User user;
    client->createUser(user, kAdminToken, draft);
    EXPECT_EQ(server.Terminate(), 0);
  }
  std::ifstream log(log_path);
  int lines = 0;
  bool ready = false;
  bool audit = false;
  for (std::string line; std::getline(log, line);) {
    if (line.empty()) continue;
    ++lines;
    const nlohmann::json object = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(object.is_object()) << "not one JSON object: " << line;
    for (const char* key : {"time", "level", "thread", "logger", "msg"}) {
      EXPECT_TRUE(object.contains(key)) << key << " missing: " << line;
    }
    const std::string msg = object.value("msg", "");
    ready = ready || msg.find("ready") != std::string::npos;
    audit = audit || (object.value("logger", "") == "audit" &&
                      msg.find("op=create_user") != std::string::npos);
  }
  EXPECT_GT(lines, 3);
  EXPECT_TRUE(ready) << "no line says the server is ready";
  EXPECT_TRUE(audit) << "no audit line for the create";
}

// Every face refuses a port another server listens on, the Thrift fibers
// model included, whose threads share their port through SO_REUSEPORT (and
// would otherwise split the connections with the other process).
TEST(ServerServiceTest, ASecondServerOnAPortInUseRefusesToStart) {
  ServerProcess first({.protocols = {"thrift", "grpc", "soap", "rest"}});
  for (const std::string protocol : {"thrift", "grpc", "soap", "rest"}) {
    EXPECT_THROW(
        ServerProcess({.protocols = {protocol}, .ports = {{protocol, first.port(protocol)}}}),
        std::runtime_error)
        << protocol;
  }
  for (int i = 0; i < 8; ++i) {  // every connection reaches the first server
    ThriftClient client(first.thrift_port());
    std::string pong;
    EXPECT_NO_THROW(client->ping(pong));
  }
  EXPECT_EQ(first.Terminate(), 0);
}

}  // namespace
}  // namespace polycrud::testing
