// AmqpConnection: one connection to a RabbitMQ broker through rabbitmq-c
// (Debian's librabbitmq), with channel 1 open and the change-event exchange
// declared. Every call is bounded by the options' timeouts and turns the
// library's replies into a Status (kUnavailable: the broker cannot be
// reached or closed the connection; kInternal: it refused something). Not
// thread-safe: one thread uses a connection at a time.
#pragma once

#include <amqp.h>
#include <sys/time.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace polycrud {

struct AmqpOptions {
  std::string host;  // empty: no broker (change events off)
  int port = 5672;
  std::string user;
  std::string password;
  std::string vhost = "/";
  // The durable topic exchange of API.md's change events.
  std::string exchange = "polycrud.events";
  std::int64_t connect_timeout_ms = 2'000;
  // Every call that waits for the broker (login, declarations, confirms).
  std::int64_t rpc_timeout_ms = 3'000;
  // The publisher's app_id on every message (e.g. which relay sent it);
  // empty: none.
  std::string app_id;
  // AMQP heartbeat (0: none); a consumer detects a dead broker within about
  // twice this.
  int heartbeat_s = 5;
};

class AmqpConnection {
 public:
  // Connects, logs in, opens channel 1 and declares the exchange.
  static StatusOr<std::unique_ptr<AmqpConnection>> Open(const AmqpOptions& options);
  ~AmqpConnection();
  AmqpConnection(const AmqpConnection&) = delete;
  AmqpConnection& operator=(const AmqpConnection&) = delete;

  amqp_connection_state_t state() { return state_; }
  const AmqpOptions& options() const { return options_; }
  static constexpr amqp_channel_t kChannel = 1;

  // The Status of the last synchronous call (amqp_get_rpc_reply), with
  // `what` naming it.
  Status LastReply(std::string_view what);
  // The Status of `reply`.
  static Status FromReply(const amqp_rpc_reply_t& reply, std::string_view what);
  // A Status for a library status code (< 0).
  static Status FromLibraryStatus(int status, std::string_view what);

 private:
  explicit AmqpConnection(const AmqpOptions& options);

  const AmqpOptions options_;
  amqp_connection_state_t state_;
  bool socket_open_ = false;
};

// `us` microseconds as the timeval rabbitmq-c's waits take.
timeval AmqpTimeval(std::int64_t us);

// An amqp_bytes_t viewing `text` (no copy; valid while `text` is).
amqp_bytes_t AmqpBytes(std::string_view text);
std::string_view AmqpView(amqp_bytes_t bytes);

}  // namespace polycrud
