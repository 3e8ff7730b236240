#include "clients/http_connection.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <string>
#include <utility>

namespace polycrud::clients {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

}  // namespace

HttpConnection::HttpConnection(std::string host, int port, int timeout_ms)
    : host_(std::move(host)), port_(port), timeout_ms_(timeout_ms) {
  Connect();
}

HttpConnection::~HttpConnection() {
  if (stream_) {
    beast::error_code ignored;
    stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
  }
}

void HttpConnection::Connect() {
  stream_.emplace(ioc_);
  try {
    tcp::resolver resolver(ioc_);
    stream_->connect(resolver.resolve(host_, std::to_string(port_)));
  } catch (const boost::system::system_error&) {
    stream_.reset();  // so that the next Send tries again
    throw;
  }
  // Sync operations ignore tcp_stream's expiry: bound them with socket options.
  timeval timeout{.tv_sec = timeout_ms_ / 1000, .tv_usec = (timeout_ms_ % 1000) * 1000};
  const int fd = stream_->socket().native_handle();
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  stream_->socket().set_option(tcp::no_delay(true));
  buffer_.clear();
  ++connections_opened_;
}

HttpResponse HttpConnection::Send(HttpRequest request) {
  request.version(11);
  request.set(http::field::host, host_ + ":" + std::to_string(port_));
  request.prepare_payload();
  for (int attempt = 0;; ++attempt) {
    beast::error_code ec;
    if (!stream_) Connect();
    http::write(*stream_, request, ec);
    HttpResponse response;
    if (!ec) http::read(*stream_, buffer_, response, ec);
    if (!ec) {
      if (!response.keep_alive()) stream_.reset();
      return response;
    }
    stream_.reset();
    const bool closed_by_server = ec == http::error::end_of_stream ||
                                  ec == asio::error::connection_reset ||
                                  ec == asio::error::broken_pipe || ec == asio::error::eof;
    if (attempt > 0 || !closed_by_server) throw boost::system::system_error(ec);
  }
}

HttpResponse HttpConnection::Send(http::verb method, const std::string& target,
                                  const std::optional<std::string>& json_body,
                                  const std::string& token) {
  HttpRequest request{method, target, 11};
  if (json_body) {
    request.set(http::field::content_type, "application/json");
    request.body() = *json_body;
  }
  if (!token.empty()) request.set(http::field::authorization, "Bearer " + token);
  return Send(std::move(request));
}

bool HttpConnection::ServerClosed() {
  if (!stream_) return true;
  char byte = 0;
  beast::error_code ec;
  stream_->socket().read_some(asio::buffer(&byte, 1), ec);
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

}  // namespace polycrud::clients
