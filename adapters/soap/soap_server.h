// SoapServer: hosts SoapUserService over HTTP/1.1 with gSOAP. It runs its
// own accept loop (the generated run() stops at the first fault) and hands
// each accepted connection to a bounded pool of worker threads; a worker
// serves one keep-alive connection at a time. Requests are taken at
// POST /soap, GET /soap?wsdl answers with the WSDL. Requests are bounded in
// size, slow or idle connections time out, and Stop() drains: requests
// already running finish before it returns.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "core/user_service.h"

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
  void WorkerLoop();
  void Serve(struct soap* connection);

  UserService& service_;
  Metrics& metrics_;
  const SoapServerOptions options_;
  struct soap* master_ = nullptr;
  int bound_port_ = 0;
  bool stopped_ = false;

  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable queue_cv_;  // the queue got an item, room, or we stop
  std::deque<struct soap*> queue_;    // accepted, not yet served (bounded)
  std::set<int> active_sockets_;      // connections being served
};

}  // namespace polycrud::soap_adapter
