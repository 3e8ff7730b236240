#include "messaging/amqp/amqp_connection.h"

#include <amqp_tcp_socket.h>

#include <string>
#include <utility>

namespace polycrud {

timeval AmqpTimeval(std::int64_t us) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(us / 1'000'000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>(us % 1'000'000);
  return tv;
}

amqp_bytes_t AmqpBytes(std::string_view text) {
  amqp_bytes_t bytes;
  bytes.len = text.size();
  bytes.bytes = const_cast<char*>(text.data());
  return bytes;
}

std::string_view AmqpView(amqp_bytes_t bytes) {
  return {static_cast<const char*>(bytes.bytes), bytes.len};
}

AmqpConnection::AmqpConnection(const AmqpOptions& options)
    : options_(options), state_(amqp_new_connection()) {}

AmqpConnection::~AmqpConnection() {
  if (socket_open_) {
    // Best effort and bounded by the rpc timeout: a dead broker must not
    // hold the caller.
    amqp_channel_close(state_, kChannel, AMQP_REPLY_SUCCESS);
    amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(state_);
}

Status AmqpConnection::FromLibraryStatus(int status, std::string_view what) {
  return Status::Unavailable("message broker: " + std::string(what) + ": " +
                             amqp_error_string2(status));
}

Status AmqpConnection::LastReply(std::string_view what) {
  return FromReply(amqp_get_rpc_reply(state_), what);
}

Status AmqpConnection::FromReply(const amqp_rpc_reply_t& reply, std::string_view what) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return Status::Ok();
    case AMQP_RESPONSE_NONE:
      return Status::Unavailable("message broker: " + std::string(what) + ": no reply");
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return FromLibraryStatus(reply.library_error, what);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      break;
  }
  std::string text;
  if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    const auto* close = static_cast<const amqp_connection_close_t*>(reply.reply.decoded);
    text = "connection closed: " + std::string(AmqpView(close->reply_text));
  } else if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    const auto* close = static_cast<const amqp_channel_close_t*>(reply.reply.decoded);
    text = "channel closed: " + std::string(AmqpView(close->reply_text));
  } else {
    text = "unexpected method " + std::to_string(reply.reply.id);
  }
  // Refused credentials or permissions are the operator's to fix; the
  // caller keeps retrying with backoff either way.
  return Status::Unavailable("message broker: " + std::string(what) + ": " + text);
}

StatusOr<std::unique_ptr<AmqpConnection>> AmqpConnection::Open(const AmqpOptions& options) {
  if (options.host.empty()) return Status::Unavailable("no message broker configured");
  std::unique_ptr<AmqpConnection> connection(new AmqpConnection(options));
  amqp_connection_state_t state = connection->state_;
  if (state == nullptr) return Status::Internal("amqp_new_connection failed");
  amqp_socket_t* socket = amqp_tcp_socket_new(state);
  if (socket == nullptr) return Status::Internal("amqp_tcp_socket_new failed");

  timeval connect_timeout = AmqpTimeval(options.connect_timeout_ms * 1000);
  const int opened =
      amqp_socket_open_noblock(socket, options.host.c_str(), options.port, &connect_timeout);
  if (opened != AMQP_STATUS_OK) return FromLibraryStatus(opened, "connect");
  connection->socket_open_ = true;

  timeval rpc_timeout = AmqpTimeval(options.rpc_timeout_ms * 1000);
  amqp_set_handshake_timeout(state, &rpc_timeout);
  amqp_set_rpc_timeout(state, &rpc_timeout);

  const amqp_rpc_reply_t login =
      amqp_login(state, options.vhost.c_str(), 0, 131072, options.heartbeat_s,
                 AMQP_SASL_METHOD_PLAIN, options.user.c_str(), options.password.c_str());
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    connection->socket_open_ = false;  // no session to close
    return FromReply(login, "login");
  }
  amqp_channel_open(state, kChannel);
  if (Status s = connection->LastReply("channel.open"); !s.ok()) return s;

  amqp_exchange_declare(state, kChannel, AmqpBytes(options.exchange), amqp_cstring_bytes("topic"),
                        /*passive=*/0, /*durable=*/1, /*auto_delete=*/0, /*internal=*/0,
                        amqp_empty_table);
  if (Status s = connection->LastReply("exchange.declare"); !s.ok()) return s;
  return connection;
}

}  // namespace polycrud
