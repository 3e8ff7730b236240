#include "tests/support/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSSLSocket.h>
#include <thrift/transport/TSocket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/sha256_token_verifier.h"
#include "transport/thrift/framed_transport.h"

namespace polycrud::testing {

namespace {

// Whether a listening socket could bind 127.0.0.1:port now.
bool CanBind(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace

int FreePort() {
  // Below the ephemeral range: a port from it (what bind() to port 0 hands
  // out) is also where the kernel picks the local port of every outgoing
  // connection, so any client socket could take it before the server binds.
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  static std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> pick(std::max(1024, ephemeral_low - 16384), ephemeral_low - 1);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = pick(random);
    if (CanBind(port)) return port;
  }
  throw std::runtime_error("no free port below the ephemeral range");
}

int FreePortWithClusterBus() {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = FreePort();
    if (port + 10000 <= 65535 && CanBind(port + 10000)) return port;
  }
  throw std::runtime_error("no free port with a free cluster bus port");
}

int FreePortRun(int count) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = FreePort();
    bool free = port + count - 1 <= 65535;
    for (int i = 1; free && i < count; ++i) free = CanBind(port + i);
    if (free) return port;
  }
  throw std::runtime_error("no run of free ports");
}

bool WaitForPort(int port, int timeout_ms, pid_t& pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      pid = -1;
      return false;
    }
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

namespace {

// An abstract-namespace Unix datagram socket: the NOTIFY_SOCKET on which a
// server says READY=1 once every face listens (sd_notify, as under systemd).
class ReadySocket {
 public:
  ReadySocket() {
    static int counter = 0;
    name_ = "@polycrud-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path + 1, name_.data() + 1, name_.size() - 1);  // [0] stays '\0'
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
    if (fd_ < 0 || bind(fd_, reinterpret_cast<const sockaddr*>(&address), length) != 0) {
      if (fd_ >= 0) close(fd_);
      throw std::runtime_error("cannot bind the readiness socket " + name_);
    }
  }
  ~ReadySocket() { close(fd_); }
  ReadySocket(const ReadySocket&) = delete;
  ReadySocket& operator=(const ReadySocket&) = delete;
  const std::string& name() const { return name_; }

  // Waits up to `timeout_ms` for READY=1; false if `pid` exited first (then
  // set to -1) or the time ran out.
  bool WaitForReady(int timeout_ms, pid_t& pid) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 20) == 1) {
        char buf[4096];
        const ssize_t n = recv(fd_, buf, sizeof buf, 0);
        if (n > 0 &&
            std::string(buf, static_cast<std::size_t>(n)).find("READY=1") != std::string::npos) {
          return true;
        }
      }
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return false;
      }
    }
    return false;
  }

 private:
  std::string name_;
  int fd_ = -1;
};

// Whether the server's log says a port was taken (another process took it
// between FreePort and the server's bind).
bool LogSaysPortTaken(const std::string& log_path) {
  std::ifstream in(log_path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str().find("cannot listen on") != std::string::npos ||
         text.str().find("ddress already in use") != std::string::npos;
}

}  // namespace

ServerProcess::ServerProcess(ServerSettings settings) {
  // A port picked by FreePort can be taken by another test's process before
  // the server binds it; the server then refuses to start, and is started
  // again on other ports. Fixed ports are tried once.
  bool fixed_ports = false;
  for (const std::string& protocol : settings.protocols) {
    for (const auto& [name, unused] : settings.ports) fixed_ports = fixed_ports || name == protocol;
  }
  const int attempts = fixed_ports ? 1 : 5;
  for (int attempt = 1;; ++attempt) {
    if (Start(settings)) return;
    if (attempt == attempts || !LogSaysPortTaken(log_path_)) break;
    Terminate();
    std::cerr << "polycrud-server: a port was taken before it bound it; again on other ports\n";
  }
  {
    const bool exited = pid_ < 0;
    Terminate();
    std::ifstream in(log_path_);
    std::cerr << in.rdbuf();
    throw std::runtime_error(exited ? "polycrud-server exited before listening"
                                    : "polycrud-server did not become ready in 30 s");
  }
}

bool ServerProcess::Start(const ServerSettings& settings) {
  const std::string binary = Setting("POLYCRUD_SERVER_BINARY");
  const std::string scratch = Setting("POLYCRUD_TEST_SCRATCH");
  std::system(("mkdir -p '" + scratch + "'").c_str());
  std::string protocols;
  std::vector<std::pair<std::string, std::string>> env;
  ports_.clear();
  started_ = false;
  for (const std::string& protocol : settings.protocols) {
    int port = 0;
    for (const auto& [name, fixed] : settings.ports) {
      if (name == protocol) port = fixed;
    }
    while (port == 0) {
      port = FreePort();
      for (const auto& [unused, taken] : ports_) port = taken == port ? 0 : port;
    }
    ports_.emplace_back(protocol, port);
    std::string variable = "POLYCRUD_";
    for (const char c : protocol) variable += static_cast<char>(std::toupper(c));
    env.emplace_back(variable + "_PORT", std::to_string(port));
    protocols += (protocols.empty() ? "" : ",") + protocol;
  }
  log_path_ = scratch + "/server-" + std::to_string(ports_.front().second) + ".log";
  env.insert(
      env.end(),
      {
          {"POLYCRUD_PROTOCOLS", protocols},
          {"POLYCRUD_MYSQL_HOST", Setting("POLYCRUD_TEST_MYSQL_HOST")},
          {"POLYCRUD_MYSQL_PORT", settings.mysql_port != 0 ? std::to_string(settings.mysql_port)
                                                           : Setting("POLYCRUD_TEST_MYSQL_PORT")},
          {"POLYCRUD_MYSQL_USER", Setting("POLYCRUD_TEST_MYSQL_USER")},
          {"POLYCRUD_MYSQL_PASSWORD", Setting("POLYCRUD_TEST_MYSQL_PASSWORD")},
          {"POLYCRUD_MYSQL_DATABASE", Setting("POLYCRUD_TEST_MYSQL_DATABASE")},
          {"POLYCRUD_REDIS_HOST", "127.0.0.1"},
          {"POLYCRUD_REDIS_PORT", settings.redis_port != 0 ? std::to_string(settings.redis_port)
                                                           : Setting("POLYCRUD_TEST_REDIS_PORT")},
          {"POLYCRUD_REDIS_USER", Setting("POLYCRUD_TEST_REDIS_USER")},
          {"POLYCRUD_REDIS_PASSWORD", Setting("POLYCRUD_TEST_REDIS_PASSWORD")},
          {"POLYCRUD_ADMIN_TOKEN_SHA256", Sha256TokenVerifier::HashHex(kAdminToken)},
          {"POLYCRUD_READER_TOKEN_SHA256", Sha256TokenVerifier::HashHex(kReaderToken)},
      });
  // Ready once the server says so, unless the test listens for that itself:
  // then once every port accepts connections.
  bool own_notify = true;
  for (const auto& [key, unused] : settings.extra_env)
    own_notify = own_notify && key != "NOTIFY_SOCKET";
  std::optional<ReadySocket> ready;
  if (own_notify) {
    ready.emplace();
    env.emplace_back("NOTIFY_SOCKET", ready->name());
  }
  for (const auto& kv : settings.extra_env) env.push_back(kv);
  std::vector<std::string> args = settings.extra_args;

  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    for (const auto& [key, value] : env) setenv(key.c_str(), value.c_str(), 1);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  if (ready.has_value()) {
    started_ = ready->WaitForReady(30'000, pid_);
  } else {
    started_ = true;
    for (const auto& [protocol, port] : ports_) {
      started_ = started_ && WaitForPort(port, 30'000, pid_);
    }
  }
  return started_;
}

int ServerProcess::port(const std::string& protocol) const {
  for (const auto& [name, port] : ports_) {
    if (name == protocol) return port;
  }
  throw std::runtime_error("the test server does not serve " + protocol);
}

ServerProcess::~ServerProcess() { Terminate(); }

int ServerProcess::Terminate() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  return Wait();
}

int ServerProcess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

const TestCertificates& Certificates(const std::string& name) {
  // Removed when the process ends: keys have no business outliving a test.
  struct Made {
    std::map<std::string, TestCertificates> sets;
    ~Made() {
      for (const auto& [unused, certs] : sets) {
        std::error_code ignored;
        std::filesystem::remove_all(certs.dir, ignored);
      }
    }
  };
  static std::mutex mu;
  static Made all;
  std::map<std::string, TestCertificates>& made = all.sets;
  const std::lock_guard lock(mu);
  auto it = made.find(name);
  if (it != made.end()) return it->second;
  const std::string dir = Setting("POLYCRUD_TEST_SCRATCH") + "/" + name + "-" + UniqueName("p");
  const std::string command = "'" + Setting("POLYCRUD_TLS_SCRIPT") + "' '" + dir + "' >/dev/null";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
  return made.emplace(name, TestCertificates{dir}).first->second;
}

ThriftClient::ThriftClient(int port, const ThriftClientTls& tls) {
  using namespace ::apache::thrift;
  auto factory = std::make_shared<transport::TSSLSocketFactory>(transport::SSLProtocol::TLSv1_2);
  factory->loadTrustedCertificates(tls.ca.c_str());
  factory->authenticate(true);
  // Checks that the certificate names the host connected to.
  factory->access(std::make_shared<transport::DefaultClientAccessManager>());
  if (!tls.cert.empty()) {
    factory->loadCertificate(tls.cert.c_str());
    factory->loadPrivateKey(tls.key.c_str());
  }
  std::shared_ptr<transport::TSSLSocket> socket = factory->createSocket("localhost", port);
  socket->setConnTimeout(5000);
  socket->setRecvTimeout(10000);
  socket->setSendTimeout(10000);
  factory_ = factory;
  transport_ = thrift_transport::MakeFramedTransport(socket);
  client_ = std::make_unique<gen::UserServiceClient>(
      std::make_shared<protocol::TBinaryProtocol>(transport_));
  transport_->open();
}

ThriftClient::ThriftClient(int port, bool compact) {
  using namespace ::apache::thrift;
  auto socket = std::make_shared<transport::TSocket>("127.0.0.1", port);
  socket->setConnTimeout(5000);
  socket->setRecvTimeout(10000);
  socket->setSendTimeout(10000);
  transport_ = thrift_transport::MakeFramedTransport(socket);
  std::shared_ptr<protocol::TProtocol> proto;
  if (compact) {
    proto = std::make_shared<protocol::TCompactProtocol>(transport_);
  } else {
    proto = std::make_shared<protocol::TBinaryProtocol>(transport_);
  }
  client_ = std::make_unique<gen::UserServiceClient>(proto);
  transport_->open();
}

ThriftClient::~ThriftClient() {
  try {
    transport_->close();
  } catch (...) {  // the server may already be gone
  }
}

}  // namespace polycrud::testing
