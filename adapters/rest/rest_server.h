// RestServer: hosts the REST routes (RestUserRoutes) and the operational
// pages (RestOpsPages) on the shared HTTP/1.1 server (transport/http), which
// reads each request whole before a thread runs its route. Bodies over
// `max_body_bytes` get 413, headers over `max_header_bytes` 431 and
// unparsable requests 400, each as a problem document; a connection that
// sends no request for `idle_timeout_ms`, or is too slow to send a body or
// take a response within `io_timeout_ms`, is closed, and so is a new
// connection beyond the process's connection budget. Stop() drains: it stops
// accepting, closes idle connections and lets requests already running
// finish.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "adapters/rest/rest_ops_pages.h"
#include "adapters/rest/rest_router.h"
#include "adapters/rest/rest_user_routes.h"
#include "core/metrics.h"
#include "core/user_service.h"
#include "transport/tls/tls.h"

namespace polycrud::runtime {
class ConnectionBudget;
}  // namespace polycrud::runtime

namespace polycrud::rest_adapter {

struct RestServerOptions {
  std::string bind_address = "127.0.0.1";
  int port = 8081;  // 0: pick a free port (see RestServer::port())
  // Also the number of handlers in flight: a handler blocks while the core
  // waits for Redis or MariaDB.
  int threads = 8;
  std::size_t max_body_bytes = 1024 * 1024;
  std::uint32_t max_header_bytes = 16 * 1024;
  int idle_timeout_ms = 30'000;  // waiting for the next request's headers
  int io_timeout_ms = 10'000;    // reading a body, writing a response
  // The process's budget of client connections (null: no limit).
  runtime::ConnectionBudget* connections = nullptr;
  tls::TlsFiles tls;  // HTTPS when set (HttpServerOptions::tls)
};

class RestServer {
 public:
  // `metrics_text` renders GET /metrics (RestOpsPages).
  RestServer(UserService& service, Metrics& metrics, std::function<std::string()> metrics_text,
             RestServerOptions options);
  ~RestServer();
  RestServer(const RestServer&) = delete;
  RestServer& operator=(const RestServer&) = delete;

  // Binds, listens and starts the I/O threads; returns once listening.
  // Throws std::exception if the address cannot be bound.
  void Start();
  // Stops accepting, closes idle connections, lets running requests finish
  // (at most 30 s), then stops the threads. Idempotent.
  void Stop();
  // The bound port (useful with port 0).
  int port() const;
  // The routes served, for documentation checks.
  const RestRouter& router() const;

 private:
  RestRouter router_;
  RestUserRoutes user_routes_;
  RestOpsPages ops_pages_;
  http_transport::HttpServer http_;
};

}  // namespace polycrud::rest_adapter
