#include "clients/http_connection.h"

#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <cerrno>
#include <chrono>
#include <string>
#include <utility>

#include "runtime/io_wait.h"

namespace polycrud::clients {
namespace {

using runtime::IoClock;

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = IoClock;

// Waits (runtime::WaitReady) until `fd` is ready for `events` or `deadline`
// passes (then beast::error::timeout).
beast::error_code WaitReady(int fd, short events, Clock::time_point deadline) {
  const std::error_code ec = runtime::WaitReady(fd, events, deadline);
  if (!ec) return {};
  if (ec == std::errc::timed_out) return beast::error::timeout;
  return {ec.value(), boost::system::system_category()};
}

// A TLS failure as Beast's error: timeout, the socket's errno, or EPROTO
// for a failure of TLS itself.
beast::error_code TlsError(const std::error_code& ec) {
  if (ec == std::errc::timed_out) return beast::error::timeout;
  return {ec.value(), boost::system::system_category()};
}

// Beast's SyncReadStream and SyncWriteStream over a non-blocking socket:
// each read_some or write_some tries the socket at once and, when it would
// block, waits until the deadline. With a TLS session, through it.
class DeadlineStream {
 public:
  DeadlineStream(tcp::socket& socket, tls::TlsChannel* tls, Clock::time_point deadline,
                 bool wait_before_read = false)
      : socket_(socket), tls_(tls), deadline_(deadline), wait_before_read_(wait_before_read) {}

  template <typename MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, beast::error_code& ec) {
    if (tls_ != nullptr) {
      const asio::mutable_buffer first = *asio::buffer_sequence_begin(buffers);
      std::size_t n = 0;
      ec = TlsError(tls_->ReadSome(first.data(), first.size(), deadline_,
                                   std::exchange(wait_before_read_, false), n));
      if (!ec && n == 0 && first.size() > 0) ec = asio::error::eof;
      return n;
    }
    // Right after a request the answer has not come yet: wait before the
    // first read instead of trying a read that would block.
    if (std::exchange(wait_before_read_, false) &&
        (ec = WaitReady(socket_.native_handle(), POLLIN, deadline_))) {
      return 0;
    }
    for (;;) {
      const std::size_t n = socket_.read_some(buffers, ec);
      if (ec != asio::error::would_block && ec != asio::error::try_again) return n;
      if ((ec = WaitReady(socket_.native_handle(), POLLIN, deadline_))) return 0;
    }
  }
  template <typename MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    beast::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <typename ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, beast::error_code& ec) {
    if (tls_ != nullptr) {
      // One TLS record for a request's header and body together.
      std::string whole(asio::buffer_size(buffers), '\0');
      asio::buffer_copy(asio::buffer(whole), buffers);
      ec = TlsError(tls_->WriteAll(whole.data(), whole.size(), deadline_));
      return ec ? 0 : whole.size();
    }
    for (;;) {
      const std::size_t n = socket_.write_some(buffers, ec);
      if (ec != asio::error::would_block && ec != asio::error::try_again) return n;
      if ((ec = WaitReady(socket_.native_handle(), POLLOUT, deadline_))) return 0;
    }
  }
  template <typename ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    beast::error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  tcp::socket& socket_;
  tls::TlsChannel* tls_;
  Clock::time_point deadline_;
  bool wait_before_read_;
};

static_assert(beast::is_sync_read_stream<DeadlineStream>::value);
static_assert(beast::is_sync_write_stream<DeadlineStream>::value);

// Connects the non-blocking `socket` to `endpoint` by `deadline`. (Asio's
// synchronous connect waits without a limit even on a non-blocking socket.)
beast::error_code ConnectBy(tcp::socket& socket, const tcp::endpoint& endpoint,
                            Clock::time_point deadline) {
  beast::error_code ec;
  socket.open(endpoint.protocol(), ec);
  if (!ec) socket.non_blocking(true, ec);
  if (ec) return ec;
  const int fd = socket.native_handle();
  if (::connect(fd, endpoint.data(), static_cast<socklen_t>(endpoint.size())) == 0) return {};
  if (errno != EINPROGRESS && errno != EINTR) return {errno, boost::system::system_category()};
  if ((ec = WaitReady(fd, POLLOUT, deadline))) return ec;
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) return {error, boost::system::system_category()};
  return {};
}

}  // namespace

HttpConnection::HttpConnection(std::string host, int port, int timeout_ms, tls::TlsFiles tls)
    : host_(std::move(host)),
      port_(port),
      timeout_ms_(timeout_ms),
      host_field_(host_ + ":" + std::to_string(port_)) {
  if (!tls.ca.empty() || tls.enabled()) tls_context_ = tls::MakeClientContext(tls);
  Connect();
}

HttpConnection::~HttpConnection() {
  tls_.reset();
  if (socket_) {
    beast::error_code ignored;
    socket_->shutdown(tcp::socket::shutdown_both, ignored);
  }
}

void HttpConnection::Connect() {
  tls_.reset();
  socket_.reset();
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  beast::error_code ec;
  tcp::resolver resolver(ioc_);
  const auto endpoints = resolver.resolve(host_, std::to_string(port_), ec);
  if (!ec && endpoints.empty()) ec = asio::error::host_not_found;
  if (!ec) {
    for (const auto& entry : endpoints) {
      socket_.emplace(ioc_);
      ec = ConnectBy(*socket_, entry.endpoint(), deadline);
      if (!ec) break;
      socket_.reset();
    }
  }
  if (!ec && tls_context_) {
    tls_ = tls::TlsChannel::Client(tls_context_.get(), socket_->native_handle(), host_);
    ec = TlsError(tls_->Handshake(deadline));
    if (ec) tls_.reset();
  }
  if (ec) {
    socket_.reset();  // so that the next Send tries again
    throw boost::system::system_error(ec);
  }
  socket_->set_option(tcp::no_delay(true));
  buffer_.clear();
  ++connections_opened_;
}

HttpResponse HttpConnection::Send(HttpRequest request) {
  request.version(11);
  request.set(http::field::host, host_field_);
  request.prepare_payload();
  const auto timeout = std::chrono::milliseconds(timeout_ms_);
  for (int attempt = 0;; ++attempt) {
    if (!socket_) Connect();
    beast::error_code ec;
    {
      DeadlineStream stream(*socket_, tls_.get(), Clock::now() + timeout);
      http::write(stream, request, ec);
    }
    HttpResponse response;
    if (!ec) {
      DeadlineStream stream(*socket_, tls_.get(), Clock::now() + timeout,
                            /*wait_before_read=*/true);
      http::read(stream, buffer_, response, ec);
    }
    if (!ec) {
      if (!response.keep_alive()) {
        tls_.reset();
        socket_.reset();
      }
      return response;
    }
    // Closing the socket drops whatever the server might still send late.
    tls_.reset();
    socket_.reset();
    buffer_.clear();
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
  if (!socket_) return true;
  char byte = 0;
  beast::error_code ec;
  DeadlineStream stream(*socket_, tls_.get(),
                        Clock::now() + std::chrono::milliseconds(timeout_ms_));
  stream.read_some(asio::buffer(&byte, 1), ec);
  if (ec == beast::error::timeout) {
    tls_.reset();
    socket_.reset();  // still open on the server's side; closed on ours
    return false;
  }
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

}  // namespace polycrud::clients
