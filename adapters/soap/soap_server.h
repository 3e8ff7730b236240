// SoapServer: hosts SoapUserService over HTTP/1.1. The shared HTTP server
// (transport/http) reads each request whole, without holding a thread, so
// idle keep-alive connections and clients that send slowly never keep a
// worker from the others; a worker then runs gSOAP on the request in memory
// (a context of a small pool: one per worker at most) and the server writes
// the answer. Requests are taken at POST /soap, GET /soap?wsdl answers with
// the WSDL. Requests over `max_request_bytes` get a fault with HTTP 413, a
// connection that sends no request for `timeout_ms`, or is that slow to send
// the rest of one or to take an answer, is closed, and so is a new
// connection beyond the process's connection budget. After a fault the
// connection stays open (each request is read whole, so none can be left
// half-read). Stop() drains: requests already running finish before it
// returns.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "core/user_service.h"
#include "transport/http/http_server.h"
#include "transport/tls/tls.h"

namespace polycrud::runtime {
class ConnectionBudget;
}  // namespace polycrud::runtime

namespace polycrud::soap_adapter {

struct SoapServerOptions {
  std::string bind_address = "127.0.0.1";
  int port = 8080;  // 0: pick a free port (see SoapServer::port())
  // Requests handled at once (each may block while the core waits).
  int workers = 8;
  std::size_t max_request_bytes = 1024 * 1024;  // of the body
  // A connection that sends no request for this long, or takes longer to
  // send the body of one or to take an answer, is closed.
  int timeout_ms = 30'000;
  int max_keep_alive_requests = 10'000;  // per connection, then it is closed; 0: no limit
  // The process's budget of client connections (null: no limit).
  runtime::ConnectionBudget* connections = nullptr;
  tls::TlsFiles tls;  // HTTPS when set (HttpServerOptions::tls)
};

// The SOAP face without its sockets: runs gSOAP on one HTTP request in
// memory and returns the HTTP answer (the server's handler; the fuzz targets
// call it directly). Thread-safe: each call takes a gSOAP context of a pool
// (one per call in flight) and gives it back.
class SoapHandler {
 public:
  SoapHandler(UserService& service, Metrics& metrics);
  ~SoapHandler();
  SoapHandler(const SoapHandler&) = delete;
  SoapHandler& operator=(const SoapHandler&) = delete;

  // The answer to `request` (POST /soap or GET /soap?wsdl), payload prepared.
  http_transport::HttpResponse Handle(http_transport::HttpRequest& request);
  // A fault with `status` (INVALID_ARGUMENT, INTERNAL...) for a request that
  // never reached gSOAP, with HTTP status `code`.
  http_transport::HttpResponse Fault(const Status& status, http_transport::http::status code);

 private:
  struct Context;  // a gSOAP context and the service on it
  std::unique_ptr<Context> TakeContext();
  void ReturnContext(std::unique_ptr<Context> context);

  UserService& service_;
  Metrics& metrics_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Context>> free_;  // guarded by mu_
};

class SoapServer {
 public:
  SoapServer(UserService& service, Metrics& metrics, SoapServerOptions options);
  ~SoapServer();
  SoapServer(const SoapServer&) = delete;
  SoapServer& operator=(const SoapServer&) = delete;

  // Binds and starts serving on background threads; returns once listening.
  // Throws std::exception if the address cannot be bound.
  void Start();
  // Stops accepting, lets running requests finish, closes connections. Idempotent.
  void Stop();
  // The bound port (useful with port 0).
  int port() const { return http_.port(); }

 private:
  SoapHandler handler_;
  http_transport::HttpServer http_;
};

}  // namespace polycrud::soap_adapter
