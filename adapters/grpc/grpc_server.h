// GrpcServer: hosts GrpcUserService on a gRPC server, together with the
// standard grpc.health.v1.Health service (NOT_SERVING while MySQL and Redis
// are both unreachable, checked every second) and server reflection.
// Received messages are bounded; Stop() drains: calls already running finish
// (up to a grace period) before it returns.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/metrics.h"
#include "core/user_service.h"
#include "transport/tls/tls.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace polycrud::runtime {
class WorkerPool;
}  // namespace polycrud::runtime

namespace polycrud::grpc_adapter {

class GrpcUserService;

struct GrpcServerOptions {
  std::string bind_address = "127.0.0.1";
  int port = 50051;                       // 0: pick a free port (see GrpcServer::port())
  int workers = 64;                       // threads running calls that do I/O
  std::size_t max_queued_calls = 10'000;  // beyond: RESOURCE_EXHAUSTED
  int max_receive_bytes = 4 * 1024 * 1024;
  int shutdown_grace_ms = 10'000;  // Stop(): then running calls are cancelled
  int health_interval_ms = 1'000;
  // A connection without a call for this long is closed (GOAWAY); one older
  // than max_connection_age_ms is closed too, after letting its calls finish
  // for up to max_connection_age_grace_ms (clients reconnect). Descriptors
  // held by forgotten clients thus come back.
  int max_connection_idle_ms = 300'000;
  int max_connection_age_ms = 1'800'000;
  int max_connection_age_grace_ms = 30'000;
  // With a certificate and key the port speaks TLS (HTTP/2 over TLS); with a
  // CA too, clients must show a certificate it signed.
  tls::TlsFiles tls;
};

class GrpcServer {
 public:
  GrpcServer(UserService& service, Metrics& metrics, GrpcServerOptions options);
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Binds and starts serving; returns once listening. Throws
  // std::runtime_error if the port cannot be bound.
  void Start();
  // Reports NOT_SERVING, stops accepting calls, lets running calls finish
  // (cancelling those still running after the grace period), then stops the
  // workers and the health checker. Idempotent; not concurrently with Start.
  void Stop();
  // The bound port (useful with port 0).
  int port() const { return bound_port_; }

 private:
  void HealthLoop();

  UserService& service_;
  Metrics& metrics_;
  const GrpcServerOptions options_;
  std::unique_ptr<runtime::WorkerPool> workers_;
  std::unique_ptr<GrpcUserService> handler_;
  std::unique_ptr<grpc::Server> server_;
  int bound_port_ = 0;
  bool stopped_ = false;

  std::mutex health_mu_;
  std::condition_variable health_cv_;
  bool stop_health_ = false;
  std::thread health_thread_;
};

}  // namespace polycrud::grpc_adapter
