// ThriftServer: hosts ThriftUserHandler on a framed-transport Thrift server.
// Three server models are offered (docs/operations.md, docs/benchmarking.md):
//   threadpool   TThreadPoolServer: one worker thread per open connection,
//                at most `workers` connections served at once;
//   nonblocking  TNonblockingServer: libevent I/O threads hand each call to a
//                pool of `workers` threads; any number of connections;
//   fibers       FiberThriftServer: `io_threads` threads each serve many
//                connections, one fiber per connection (fiber_thrift_server.h),
//                each thread with the UserService its fibers may call
//                (ServiceForThread); up to `max_connections` connections.
// Frames and strings are bounded, idle connections time out, and Stop()
// drains: calls already running finish before it returns. The fibers and
// threadpool models serve TLS when given a certificate (options.tls).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "adapters/thrift/thrift_status_handler.h"
#include "core/metrics.h"
#include "core/user_service.h"
#include "transport/tls/tls.h"

namespace apache::thrift {
class TConfiguration;
}  // namespace apache::thrift
namespace apache::thrift::protocol {
class TProtocolFactory;
}  // namespace apache::thrift::protocol
namespace apache::thrift::server {
class TServer;
}  // namespace apache::thrift::server
namespace apache::thrift::concurrency {
class ThreadManager;
}  // namespace apache::thrift::concurrency

namespace polycrud::thrift_adapter {
class FiberThriftServer;
}  // namespace polycrud::thrift_adapter
namespace polycrud::runtime {
class ConnectionBudget;
}  // namespace polycrud::runtime

namespace polycrud::thrift_adapter {

enum class ThriftProtocol : std::uint8_t { kBinary, kCompact };
enum class ThriftServerModel : std::uint8_t { kThreadPool, kNonblocking, kFibers };

struct ThriftServerOptions {
  std::string bind_address = "127.0.0.1";
  int port = 9090;  // 0: pick a free port (see ThriftServer::port())
  int workers = 128;
  int io_threads = 2;            // nonblocking and fibers models
  int max_connections = 10'000;  // fibers model
  ThriftProtocol protocol = ThriftProtocol::kBinary;
  ThriftServerModel model = ThriftServerModel::kFibers;
  std::int32_t max_frame_bytes = 4 * 1024 * 1024;
  std::int32_t max_string_bytes = 64 * 1024;
  std::int32_t max_container_items = 100'000;
  int idle_timeout_ms = 30'000;     // threadpool and fibers models: idle or stalled reads
  int request_timeout_ms = 10'000;  // fibers model: a whole request, from its first byte
  int send_timeout_ms = 10'000;
  // fibers model: the process's budget of client connections (null: none).
  runtime::ConnectionBudget* connections = nullptr;
  // With a certificate and key, every connection is TLS (fibers: TlsChannel;
  // threadpool: Thrift's TSSLServerSocket); with a CA too, clients must show
  // a certificate it signed. The nonblocking model has no TLS (Start throws).
  tls::TlsFiles tls;
  // What the status service beside UserService reports (ThriftStatusHandler).
  StatusSource status;
};

// How every model reads requests: the protocol with the string and
// container limits of `options`, and the transport configuration that bounds
// a frame at max_frame_bytes (also used by the fuzz targets, so that they
// decode exactly as the server does).
std::shared_ptr<apache::thrift::protocol::TProtocolFactory> MakeProtocolFactory(
    const ThriftServerOptions& options);
std::shared_ptr<apache::thrift::TConfiguration> MakeTransportConfig(
    const ThriftServerOptions& options);

// The UserService the fibers of fiber thread `thread` (0 .. io_threads-1)
// call: one whose blocking calls park a fiber instead of its thread
// (server/services.h wires them).
using ServiceForThread = std::function<UserService&(int thread)>;

class ThriftServer {
 public:
  // Every model serves `service`; the fibers model too, on every thread.
  ThriftServer(UserService& service, Metrics& metrics, ThriftServerOptions options);
  // The fibers model serves thread i with fiber_services(i); the other
  // models serve `service`.
  ThriftServer(UserService& service, Metrics& metrics, ServiceForThread fiber_services,
               ThriftServerOptions options);
  ~ThriftServer();

  // Binds and starts serving on a background thread; returns once listening.
  void Start();
  // Stops accepting, lets running calls finish, closes connections. Idempotent.
  void Stop();
  // The bound port (useful with port 0).
  int port() const { return bound_port_; }

 private:
  UserService& service_;
  Metrics& metrics_;
  const ServiceForThread fiber_services_;  // empty: service_ on every thread
  const ThriftServerOptions options_;
  std::shared_ptr<apache::thrift::concurrency::ThreadManager> thread_manager_;
  std::shared_ptr<apache::thrift::server::TServer> server_;
  std::unique_ptr<FiberThriftServer> fiber_server_;
  tls::SslCtxPtr tls_context_;  // fibers model with TLS
  std::thread serve_thread_;
  int bound_port_ = 0;
  bool stopped_ = false;
};

}  // namespace polycrud::thrift_adapter
