#include "transport/http/http_server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/system/system_error.hpp>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/connection_budget.h"

namespace polycrud::http_transport {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

constexpr auto kDrainTimeout = std::chrono::seconds(30);
// After an error reply we read (and drop) what the client still sends, so
// closing does not reset the connection before it has read the reply.
constexpr auto kLingerTimeout = std::chrono::seconds(1);
constexpr std::size_t kLingerBytes = 16 * 1024 * 1024;

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
template <typename Stream>
constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

// One client connection. `idle` is only touched on the connection's strand.
struct SessionBase {
  explicit SessionBase(std::optional<ConcurrencyLimiter::Slot> budget_slot)
      : slot(std::move(budget_slot)) {}
  virtual ~SessionBase() = default;
  // On the connection's strand: ends the read it waits in.
  virtual void CloseIfIdle() = 0;
  virtual asio::any_io_executor executor() = 0;
  bool idle = false;
  std::optional<ConcurrencyLimiter::Slot> slot;  // of the connection budget, if any
};

// Stream: beast::tcp_stream (HTTP) or TlsStream (HTTPS).
template <typename Stream>
struct Session final : SessionBase {
  template <typename... StreamArgs>
  Session(std::optional<ConcurrencyLimiter::Slot> budget_slot, StreamArgs&&... args)
      : SessionBase(std::move(budget_slot)), stream(std::forward<StreamArgs>(args)...) {}
  void CloseIfIdle() override {
    if (idle) beast::get_lowest_layer(stream).cancel();
  }
  asio::any_io_executor executor() override { return stream.get_executor(); }
  Stream stream;
};

// Why a read failed (the status and message of the answer), if the client
// should get an answer.
struct ReadFailure {
  http::status status;
  std::string_view message;
};
std::optional<ReadFailure> AnswerableReadError(const beast::error_code& ec) {
  if (ec == http::error::body_limit) {
    return ReadFailure{http::status::payload_too_large,
                       "the request body is larger than the server accepts"};
  }
  if (ec == http::error::header_limit) {
    return ReadFailure{http::status::request_header_fields_too_large,
                       "the request headers are larger than the server accepts"};
  }
  if (ec.category() == beast::http::make_error_code(http::error::bad_target).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message &&
      ec != http::error::need_more) {
    return ReadFailure{http::status::bad_request, "malformed HTTP request"};
  }
  return std::nullopt;  // timeout, reset, cancelled: nobody to answer
}

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpHandlers handlers, HttpServerOptions options)
      : handlers_(std::move(handlers)), options_(std::move(options)) {
    if (options_.tls.enabled()) {
      // asio's context takes over the OpenSSL context.
      tls_.emplace(tls::MakeServerContext(options_.tls).release());
    }
  }

  void Start() {
    const tcp::endpoint endpoint(asio::ip::make_address(options_.bind_address),
                                 static_cast<std::uint16_t>(options_.port));
    acceptor_.emplace(asio::make_strand(ioc_));
    try {
      acceptor_->open(endpoint.protocol());
      acceptor_->set_option(asio::socket_base::reuse_address(true));
      acceptor_->bind(endpoint);
      acceptor_->listen(asio::socket_base::max_listen_connections);
    } catch (const boost::system::system_error& e) {
      acceptor_.reset();
      throw std::runtime_error("cannot listen on " + options_.bind_address + ":" +
                               std::to_string(options_.port) + ": " + e.code().message());
    }
    port_ = acceptor_->local_endpoint().port();
    asio::co_spawn(acceptor_->get_executor(), Accept(), asio::detached);
    for (int i = 0; i < options_.threads; ++i) {
      threads_.emplace_back([this] {
        for (;;) {
          try {
            ioc_.run();
            return;
          } catch (const std::exception& e) {
            spdlog::error("{}: I/O thread: {}", options_.name, e.what());
          }
        }
      });
    }
    started_ = true;
  }

  void Stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    stopping_.store(true);
    asio::post(acceptor_->get_executor(), [this] {
      beast::error_code ignored;
      acceptor_->close(ignored);
    });
    {
      std::unique_lock lock(mu_);
      for (const std::shared_ptr<SessionBase>& session : sessions_) {
        // Idle connections are closed now; busy ones close after their reply.
        asio::post(session->executor(), [session] { session->CloseIfIdle(); });
      }
      cv_.wait_for(lock, kDrainTimeout, [this] { return sessions_.empty(); });
      if (!sessions_.empty()) {
        spdlog::warn("{}: {} connections still busy after the drain timeout", options_.name,
                     sessions_.size());
      }
    }
    ioc_.stop();
    for (std::thread& thread : threads_) thread.join();
  }

  int port() const { return port_; }

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      beast::error_code ec;
      tcp::socket socket = co_await acceptor_->async_accept(
          asio::make_strand(ioc_), asio::redirect_error(asio::use_awaitable, ec));
      if (stopping_.load()) co_return;
      if (ec) {
        spdlog::warn("{}: accept failed: {}", options_.name, ec.message());
        // Out of descriptors and the like: back off instead of spinning.
        asio::steady_timer timer(co_await asio::this_coro::executor, milliseconds(50));
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      std::optional<ConcurrencyLimiter::Slot> slot;
      if (options_.connections != nullptr) {
        slot = options_.connections->TryTake();
        if (!slot) {
          if (options_.connections->TakeWarningTurn()) {
            spdlog::warn("{}: the process holds its {} client connections, refusing more",
                         options_.name, options_.connections->limit());
          }
          socket.close(ec);
          continue;
        }
      }
      socket.set_option(tcp::no_delay(true), ec);
      // Once per connection (it is a system call): Write's synchronous part
      // must stop where the socket would block.
      socket.non_blocking(true, ec);
      if (tls_) {
        Spawn(std::make_shared<Session<TlsStream>>(std::move(slot), std::move(socket), *tls_));
      } else {
        Spawn(std::make_shared<Session<beast::tcp_stream>>(std::move(slot), std::move(socket)));
      }
    }
  }

  // Runs a new connection, and forgets it when it ends.
  template <typename Stream>
  void Spawn(std::shared_ptr<Session<Stream>> session) {
    {
      std::lock_guard lock(mu_);
      sessions_.insert(session);
    }
    asio::co_spawn(session->stream.get_executor(), Serve(session),
                   [this, session](const std::exception_ptr& error) {
                     if (error) {
                       try {
                         std::rethrow_exception(error);
                       } catch (const std::exception& e) {
                         spdlog::error("{}: connection failed: {}", options_.name, e.what());
                       }
                     }
                     std::lock_guard lock(mu_);
                     sessions_.erase(session);
                     if (sessions_.empty()) cv_.notify_all();
                   });
  }

  template <typename Stream>
  asio::awaitable<void> Serve(std::shared_ptr<Session<Stream>> session) {
    Stream& stream = session->stream;
    beast::tcp_stream& lowest = beast::get_lowest_layer(stream);
    beast::flat_buffer buffer;
    beast::error_code ec;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    if constexpr (kTls<Stream>) {
      // No request yet: Stop() may close it as it closes idle connections.
      session->idle = true;
      lowest.expires_after(milliseconds(options_.io_timeout_ms));
      co_await stream.async_handshake(asio::ssl::stream_base::server, token);
      session->idle = false;
      if (ec) {
        spdlog::debug("{}: TLS handshake failed: {}", options_.name, ec.message());
        lowest.close();
        co_return;
      }
    }
    for (int served = 1;; ++served) {
      if (stopping_.load()) break;
      http::request_parser<http::string_body> parser;
      parser.body_limit(options_.max_body_bytes);
      parser.header_limit(options_.max_header_bytes);
      session->idle = true;
      lowest.expires_after(milliseconds(options_.idle_timeout_ms));
      co_await http::async_read_header(stream, buffer, parser, token);
      session->idle = false;
      if (!ec && !parser.is_done()) {
        if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
          http::response<http::empty_body> go_on{http::status::continue_, parser.get().version()};
          lowest.expires_after(milliseconds(options_.io_timeout_ms));
          co_await http::async_write(stream, go_on, token);
          if (ec) break;
        }
        lowest.expires_after(milliseconds(options_.io_timeout_ms));
        co_await http::async_read(stream, buffer, parser, token);
      }
      if (ec) {
        if (const std::optional<ReadFailure> failure = AnswerableReadError(ec)) {
          HttpResponse reply = handlers_.read_error(failure->status, failure->message);
          reply.keep_alive(false);
          reply.prepare_payload();
          lowest.expires_after(milliseconds(options_.io_timeout_ms));
          co_await http::async_write(stream, reply, token);
          co_await Linger(stream);
        }
        break;
      }
      HttpRequest& request = parser.get();
      const unsigned version = request.version();
      const bool keep_alive = request.keep_alive();
      HttpResponse response;
      try {
        response = handlers_.handle(request);
      } catch (const std::exception& e) {
        spdlog::error("{}: {} {}: {}", options_.name, std::string(request.method_string()),
                      std::string(request.target()), e.what());
        response = handlers_.internal_error();
        response.prepare_payload();
      }
      const bool last = stopping_.load() || (options_.max_keep_alive_requests > 0 &&
                                             served >= options_.max_keep_alive_requests);
      const bool handler_keeps = response.keep_alive();
      response.version(version);
      const bool keeps = keep_alive && handler_keeps && !last;
      // Only when it changes: an answer's own "Connection: keep-alive" stays.
      if (response.keep_alive() != keeps) response.keep_alive(keeps);
      co_await Write(stream, response, ec);
      if (ec || !response.keep_alive()) break;
    }
    if constexpr (kTls<Stream>) {
      // close_notify, and the peer's if it comes soon.
      lowest.expires_after(kLingerTimeout);
      co_await stream.async_shutdown(token);
    }
    lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest.close();
  }

  // Writes `response`: as much as the socket takes at once on this thread
  // (usually all of it), the rest asynchronously within the I/O timeout. An
  // asynchronous write alone hands its completion to another I/O thread,
  // a thread switch per answer that a small answer does not need.
  // Over TLS the whole answer is written asynchronously: a TLS record cut
  // where the socket would block cannot be resumed by another write.
  template <typename Stream>
  asio::awaitable<void> Write(Stream& stream, HttpResponse& response, beast::error_code& ec) {
    http::serializer<false, http::string_body> serializer(response);
    beast::tcp_stream& lowest = beast::get_lowest_layer(stream);
    if constexpr (!kTls<Stream>) {
      tcp::socket& socket = lowest.socket();  // non-blocking since Accept
      while (!ec && !serializer.is_done()) http::write_some(socket, serializer, ec);
      if (ec != asio::error::would_block && ec != asio::error::try_again) co_return;
      ec = {};
    }
    lowest.expires_after(milliseconds(options_.io_timeout_ms));
    co_await http::async_write(stream, serializer, asio::redirect_error(asio::use_awaitable, ec));
  }

  // Half-closes (plain HTTP) and reads what the client still sends, for a
  // short while.
  template <typename Stream>
  asio::awaitable<void> Linger(Stream& stream) {
    beast::error_code ec;
    beast::tcp_stream& lowest = beast::get_lowest_layer(stream);
    if constexpr (!kTls<Stream>) lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest.expires_after(kLingerTimeout);
    std::array<char, 16 * 1024> scratch;
    std::size_t total = 0;
    while (!ec && total < kLingerBytes) {
      total += co_await stream.async_read_some(asio::buffer(scratch),
                                               asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  const HttpHandlers handlers_;
  const HttpServerOptions options_;
  asio::io_context ioc_;
  std::optional<tcp::acceptor> acceptor_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  bool stopped_ = false;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::shared_ptr<SessionBase>> sessions_;
  std::optional<asio::ssl::context> tls_;  // HTTPS when set
};

HttpServer::HttpServer(HttpHandlers handlers, HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(handlers), std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Start() { impl_->Start(); }
void HttpServer::Stop() { impl_->Stop(); }
int HttpServer::port() const { return impl_->port(); }

}  // namespace polycrud::http_transport
