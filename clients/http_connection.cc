#include "clients/http_connection.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <chrono>
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

// Asio's synchronous socket calls ignore both tcp_stream's expiry and
// SO_RCVTIMEO (they poll without a limit), so every operation runs
// asynchronously on the private io_context with the stream's expiry set:
// on expiry the stream closes and the operation fails with
// beast::error::timeout.
template <typename Start>
beast::error_code HttpConnection::Run(Start&& start) {
  beast::error_code result = asio::error::would_block;
  stream_->expires_after(std::chrono::milliseconds(timeout_ms_));
  std::forward<Start>(start)([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc_.restart();
  ioc_.run();
  return result;
}

void HttpConnection::Connect() {
  stream_.emplace(ioc_);
  beast::error_code ec;
  tcp::resolver resolver(ioc_);
  const auto endpoints = resolver.resolve(host_, std::to_string(port_), ec);
  if (!ec) {
    ec = Run([&](auto handler) { stream_->async_connect(endpoints, std::move(handler)); });
  }
  if (ec) {
    stream_.reset();  // so that the next Send tries again
    throw boost::system::system_error(ec);
  }
  stream_->socket().set_option(tcp::no_delay(true));
  buffer_.clear();
  ++connections_opened_;
}

HttpResponse HttpConnection::Send(HttpRequest request) {
  request.version(11);
  request.set(http::field::host, host_ + ":" + std::to_string(port_));
  request.prepare_payload();
  for (int attempt = 0;; ++attempt) {
    if (!stream_) Connect();
    beast::error_code ec =
        Run([&](auto handler) { http::async_write(*stream_, request, std::move(handler)); });
    HttpResponse response;
    if (!ec) {
      ec = Run(
          [&](auto handler) { http::async_read(*stream_, buffer_, response, std::move(handler)); });
    }
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
  const beast::error_code ec = Run(
      [&](auto handler) { stream_->async_read_some(asio::buffer(&byte, 1), std::move(handler)); });
  if (ec == beast::error::timeout) {
    stream_.reset();  // the expiry closed it; still open on the server's side
    return false;
  }
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

}  // namespace polycrud::clients
