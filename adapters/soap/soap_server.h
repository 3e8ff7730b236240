// SoapServer: hosts SoapUserService over HTTP/1.1 with gSOAP. It runs its
// own accept loop (the generated run() stops at the first fault) and hands
// each accepted connection to a bounded runtime::WorkerPool; a worker
// serves one keep-alive connection at a time. Requests are taken at
// POST /soap, GET /soap?wsdl answers with the WSDL. Requests are bounded in
// size, slow or idle connections time out, and Stop() drains: requests
// already running finish before it returns.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <semaphore>
#include <set>
#include <string>
#include <thread>

#include "core/metrics.h"
#include "core/user_service.h"
#include "runtime/worker_pool.h"

struct soap;

namespace polycrud::soap_adapter {

struct SoapServerOptions {
  std::string bind_address = "127.0.0.1";
  int port = 8080;  // 0: pick a free port (see SoapServer::port())
  int workers = 32;
  std::size_t max_request_bytes = 1024 * 1024;
  // A connection that sends nothing (or stalls a read or write) for this
  // long is closed; a whole message must arrive within twice this time.
  int timeout_ms = 30'000;
  int backlog = 128;
  int max_keep_alive_requests = 10'000;  // per connection, then it is closed; 0: no limit
};

class SoapServer {
 public:
  SoapServer(UserService& service, Metrics& metrics, SoapServerOptions options);
  ~SoapServer();
  SoapServer(const SoapServer&) = delete;
  SoapServer& operator=(const SoapServer&) = delete;

  // Binds and starts serving on background threads; returns once listening.
  // Throws std::runtime_error if the address cannot be bound.
  void Start();
  // Stops accepting, lets running requests finish, closes connections. Idempotent.
  void Stop();
  // The bound port (useful with port 0).
  int port() const { return bound_port_; }

 private:
  void AcceptLoop();
  // Serves one accepted connection on a worker, then closes and frees it.
  void ServeConnection(struct soap* connection);
  void Serve(struct soap* connection);

  UserService& service_;
  Metrics& metrics_;
  const SoapServerOptions options_;
  struct soap* master_ = nullptr;
  int bound_port_ = 0;
  bool stopped_ = false;

  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  // Connections are served on the shared worker pool; at most `workers`
  // run and `workers` more wait, which `slots_` keeps the acceptor to.
  std::unique_ptr<runtime::WorkerPool> workers_;
  std::unique_ptr<std::counting_semaphore<>> slots_;
  std::mutex mu_;
  std::set<int> active_sockets_;  // guarded by mu_: connections being served
};

}  // namespace polycrud::soap_adapter
