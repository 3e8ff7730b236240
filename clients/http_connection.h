// A synchronous HTTP/1.1 client over Boost.Beast (the REST client of
// ProtocolClient, and tests of the REST face): one keep-alive connection,
// reopened when the server closed it. Beast's synchronous read and write run
// on a non-blocking socket that waits up to a deadline (runtime::WaitReady:
// poll(), or the thread's IoWaiter), so timeouts fire without an event loop,
// a timer or a thread per call.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>
#include <string>

#include "transport/tls/tls.h"

namespace polycrud::clients {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

class HttpConnection {
 public:
  // Connects to host:port at once; throws boost::system::system_error when
  // it cannot. Connect, send and receive each time out after timeout_ms.
  // With `tls` (a CA at least) it speaks HTTPS, verifying `host`.
  HttpConnection(std::string host, int port, int timeout_ms = 20'000, tls::TlsFiles tls = {});
  explicit HttpConnection(int port) : HttpConnection("127.0.0.1", port) {}
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends `request` (Host, version and payload size filled in) and reads the
  // response. If the server had closed the kept-alive connection, opens a new
  // one and sends again once. Throws boost::system::system_error otherwise.
  HttpResponse Send(HttpRequest request);

  // Shorthand: `method target` with an optional JSON body and bearer token.
  HttpResponse Send(http::verb method, const std::string& target,
                    const std::optional<std::string>& json_body = std::nullopt,
                    const std::string& token = "");

  // TCP connections opened so far (1 while keep-alive holds).
  int connections_opened() const { return connections_opened_; }
  // True if the server has closed the connection (a read sees EOF before
  // the timeout).
  bool ServerClosed();

 private:
  void Connect();

  std::string host_;
  int port_;
  int timeout_ms_;
  std::string host_field_;       // "host:port"
  boost::asio::io_context ioc_;  // only to make sockets and resolve; never run
  std::optional<boost::asio::ip::tcp::socket> socket_;  // non-blocking
  std::shared_ptr<SSL_CTX> tls_context_;                // HTTPS when set
  std::unique_ptr<tls::TlsChannel> tls_;                // the session on socket_
  boost::beast::flat_buffer buffer_;
  int connections_opened_ = 0;
};

}  // namespace polycrud::clients
