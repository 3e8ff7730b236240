// FiberThriftServer: the "fibers" Thrift server model. `threads` threads
// (one per core is the point) each run a runtime::FiberScheduler with a
// listening socket of their own on the same port (SO_REUSEPORT: the kernel
// spreads new connections over them) and a processor of their own, whose
// handler's UserService reaches Redis and MySQL the way fibers of that one
// thread may (server/services.h). Every connection is a fiber that runs
// its thread's processor call after call over a framed transport whose
// reads and writes wait in the scheduler. A call that waits, for its socket,
// for a Redis reply (the thread's RedisFiberConnection parks its fiber) or
// for a MySQL call handed to a worker thread (OffloadingUserStore), parks
// only its fiber: the thread goes on with other connections. A cached read thus
// costs no thread sleep and wake-up of its own, which on a 2-core machine
// is about as much as a whole ping; the scheduler sleeps in epoll only when
// every connection of its thread waits.
//
// Bounded like the other models: frames (the configuration's max frame
// size), strings and containers (the protocol factory), connections
// (`max_connections`; more are closed at once), idle connections
// (`idle_timeout` between requests), slow requests (`request_timeout`: once
// the first byte of a request is in, all of it must be within that time, so
// a byte now and then cannot hold a connection) and stalled writes
// (`send_timeout`). With `tls` every connection speaks TLS first (Thrift's
// TSSLSocket on the client side). Stop() stops
// accepting, lets each call that is running finish and closes the
// connections.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace apache::thrift {
class TConfiguration;
class TProcessor;
namespace protocol {
class TProtocolFactory;
}  // namespace protocol
}  // namespace apache::thrift

typedef struct ssl_ctx_st SSL_CTX;  // NOLINT: OpenSSL's own spelling

namespace polycrud::runtime {
class ConnectionBudget;
class FiberScheduler;
}  // namespace polycrud::runtime

namespace polycrud::thrift_adapter {

struct FiberServerOptions {
  std::string bind_address = "127.0.0.1";
  int port = 0;  // 0: any free port
  int threads = 2;
  int max_connections = 10'000;
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds send_timeout{10'000};
  // The process's budget of client connections (null: none but
  // max_connections); a connection beyond it is closed at once.
  runtime::ConnectionBudget* connections = nullptr;
  // With a context (tls::MakeServerContext; not owned, outlives the server)
  // every connection is TLS: its handshake must end within request_timeout,
  // then the framed protocol runs inside it.
  SSL_CTX* tls = nullptr;
};

class FiberThriftServer {
 public:
  // `processors` has one processor per thread (options.threads of them);
  // thread i serves its connections with processors[i] only.
  FiberThriftServer(std::vector<std::shared_ptr<apache::thrift::TProcessor>> processors,
                    std::shared_ptr<apache::thrift::protocol::TProtocolFactory> protocol,
                    std::shared_ptr<apache::thrift::TConfiguration> config,
                    FiberServerOptions options);
  ~FiberThriftServer();
  FiberThriftServer(const FiberThriftServer&) = delete;
  FiberThriftServer& operator=(const FiberThriftServer&) = delete;

  // Binds every listening socket (throws std::system_error if it cannot) and
  // starts the threads; they accept from then on.
  void Start();
  // Idempotent; see above.
  void Stop();
  int port() const { return port_; }

 private:
  void RunThread(int thread);
  // The acceptor fiber of one thread: each connection gets a fiber of its own.
  void Accept(runtime::FiberScheduler& scheduler, int thread);
  void Serve(int fd, apache::thrift::TProcessor& processor);
  // Forgets and closes an accepted connection that is refused.
  void Refuse(int fd);

  const std::vector<std::shared_ptr<apache::thrift::TProcessor>> processors_;
  const std::shared_ptr<apache::thrift::protocol::TProtocolFactory> protocol_;
  const std::shared_ptr<apache::thrift::TConfiguration> config_;
  const FiberServerOptions options_;
  std::vector<int> listen_fds_;
  std::vector<std::thread> threads_;
  int port_ = 0;
  std::mutex mu_;
  bool stopping_ = false;         // guarded by mu_
  std::unordered_set<int> open_;  // guarded by mu_: the connections' descriptors
};

}  // namespace polycrud::thrift_adapter
