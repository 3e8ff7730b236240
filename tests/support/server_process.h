// Test helpers that run the real polycrud-server binary and talk to it over
// Thrift. Each test picks its own port; the process is stopped by PID.
#pragma once

#include <sys/types.h>

#include <cctype>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "UserService.h"
#include "tests/support/settings.h"

namespace polycrud::testing {

namespace gen = ::polycrud::thrift;

// A TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral
// range (so no outgoing connection takes it meanwhile).
int FreePort();
// A free port whose port + 10000 (a Redis Cluster node's bus) is free too.
int FreePortWithClusterBus();
// A free port P with P+1 ... P+count-1 free too (a Galera node's group,
// incremental and full state transfer ports).
int FreePortRun(int count);

// The admin and reader tokens every test server is configured with.
inline constexpr const char* kAdminToken = "test-admin-token";
inline constexpr const char* kReaderToken = "test-reader-token";

struct ServerSettings {
  // Faces to serve (--protocols); each gets a free port, passed as
  // POLYCRUD_<NAME>_PORT, and the server counts as started once all listen.
  std::vector<std::string> protocols = {"thrift"};
  // Ports to use instead of free ones, by protocol (a server restarted on
  // the ports of the one it replaces).
  std::vector<std::pair<std::string, int>> ports;
  int mysql_port = 0;  // 0: the shared test stack's
  int redis_port = 0;  // 0: the shared test stack's
  std::vector<std::pair<std::string, std::string>> extra_env;
  std::vector<std::string> extra_args;
};

// polycrud-server as a child process, configured for the test stack.
class ServerProcess {
 public:
  explicit ServerProcess(ServerSettings settings = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int thrift_port() const { return port("thrift"); }
  // The port of a face listed in ServerSettings::protocols; throws otherwise.
  int port(const std::string& protocol) const;
  pid_t pid() const { return pid_; }
  // Sends SIGTERM and waits; returns the exit status (or -1).
  int Terminate();
  // Waits up to 30 s for the server to exit by itself (after a signal the
  // test sent), SIGKILL after that; returns the exit status (or -1).
  int Wait();
  // Sends SIGKILL and reaps the process (a crash: no drain, nothing flushed).
  void Kill();
  // The faces and their ports.
  const std::vector<std::pair<std::string, int>>& ports() const { return ports_; }
  // Path of the server's log file.
  const std::string& log_path() const { return log_path_; }

 private:
  // Starts the server once, on ports of `settings` or free ones; true once
  // it is ready, false if it exited first or did not become ready in 30 s.
  bool Start(const ServerSettings& settings);

  pid_t pid_ = -1;
  bool started_ = false;
  std::vector<std::pair<std::string, int>> ports_;
  std::string log_path_;
};

// Certificates made by deploy/local/tls.sh for this test process: a CA, a
// server certificate for localhost and 127.0.0.1 and a client certificate.
struct TestCertificates {
  std::string dir;
  std::string ca() const { return dir + "/ca.pem"; }
  std::string server_cert() const { return dir + "/server.pem"; }
  std::string server_key() const { return dir + "/server.key"; }
  std::string client_cert() const { return dir + "/client.pem"; }
  std::string client_key() const { return dir + "/client.key"; }
};
// The certificates in a directory of its own under the test scratch folder
// (`name` tells two sets apart: each has its own CA). Made once per process.
const TestCertificates& Certificates(const std::string& name = "tls");

// How a ThriftClient speaks TLS: Thrift's own TSSLSocket, trusting `ca`, and
// sending `cert`/`key` when set (mutual TLS).
struct ThriftClientTls {
  std::string ca;
  std::string cert;
  std::string key;
};

// A user draft named `name` (e-mail name@example.com) for the Thrift client.
inline gen::UserDraft TestDraft(const std::string& name, const std::string& full_name = "Test") {
  gen::UserDraft draft;
  draft.username = name;
  draft.email = name + "@example.com";
  draft.full_name = full_name;
  return draft;
}

// A connected Thrift client (framed, binary unless compact is asked for).
class ThriftClient {
 public:
  explicit ThriftClient(int port, bool compact = false);
  // Over TLS (Thrift's TSSLSocket to "localhost", the name verified).
  ThriftClient(int port, const ThriftClientTls& tls);
  ~ThriftClient();
  gen::UserServiceClient* operator->() { return client_.get(); }
  gen::UserServiceClient& operator*() { return *client_; }

 private:
  std::shared_ptr<void> factory_;  // TLS: the socket factory outlives its sockets
  std::shared_ptr<apache::thrift::transport::TTransport> transport_;
  std::unique_ptr<gen::UserServiceClient> client_;
};

// True once something accepts TCP connections on 127.0.0.1:port; false
// after the timeout, or at once when the process `pid` has exited (it is
// then reaped and `pid` set to -1).
bool WaitForPort(int port, int timeout_ms, pid_t& pid);

}  // namespace polycrud::testing
