// HttpServer: the HTTP/1.1 server under the REST and SOAP faces, on
// Boost.Beast: one asio io_context run by `threads` threads, asynchronous
// accept, one coroutine per connection with keep-alive. A request is read
// whole (headers, then body) without holding a thread, and only then handed
// to the face's handler on one of the threads, so idle keep-alive
// connections and clients that send slowly cost a socket, never a handler.
// Bodies over `max_body_bytes` and headers over `max_header_bytes` get the
// face's reply for them (then the connection closes); a connection that sends
// no request headers for `idle_timeout_ms`, or is too slow to send a body or
// take a response within `io_timeout_ms`, is closed, and so is a new connection
// beyond the process's connection budget. Stop() drains: it stops
// accepting, closes idle connections and lets requests already running
// finish.
#pragma once

#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "transport/tls/tls.h"

namespace polycrud::runtime {
class ConnectionBudget;
}  // namespace polycrud::runtime

namespace polycrud::http_transport {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

struct HttpServerOptions {
  std::string name = "http";  // names the face in log lines
  std::string bind_address = "127.0.0.1";
  int port = 0;  // 0: pick a free port (see HttpServer::port())
  // Also the number of handlers in flight: a handler blocks while the core
  // waits for Redis or MariaDB.
  int threads = 8;
  std::size_t max_body_bytes = 1024 * 1024;
  std::uint32_t max_header_bytes = 16 * 1024;
  int idle_timeout_ms = 30'000;  // waiting for the next request's headers, whole
  int io_timeout_ms = 10'000;    // reading a body, writing a response
  // Requests served on one connection before it is closed ("Connection:
  // close" on the last answer); 0: no limit.
  int max_keep_alive_requests = 0;
  // The process's budget of client connections (null: no limit).
  runtime::ConnectionBudget* connections = nullptr;
  // With a certificate and key every connection is HTTPS (TLS 1.2+; the
  // handshake must end within io_timeout_ms); with a CA too, clients must
  // show a certificate it signed (mutual TLS).
  tls::TlsFiles tls;
};

struct HttpHandlers {
  // Answers one request (runs on an I/O thread and may block), with its
  // payload prepared (Content-Length set). The server sets the answer's
  // version, and keep-alive to what the request asked for unless the answer
  // says close or the connection must end.
  std::function<HttpResponse(HttpRequest& request)> handle;
  // The answer, in the face's own format, to a request that could not be
  // read: `status` 413 (body over max_body_bytes), 431 (headers over
  // max_header_bytes) or 400 (not HTTP/1.1 the parser accepts), and a
  // message for the client saying which.
  std::function<HttpResponse(http::status status, std::string_view message)> read_error;
  // The answer when `handle` throws (logged by the server).
  std::function<HttpResponse()> internal_error;
};

class HttpServer {
 public:
  HttpServer(HttpHandlers handlers, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the I/O threads; returns once listening.
  // Throws std::exception if the address cannot be bound.
  void Start();
  // Stops accepting, closes idle connections, lets running requests finish
  // (at most 30 s), then stops the threads. Idempotent.
  void Stop();
  // The bound port (useful with port 0).
  int port() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace polycrud::http_transport
