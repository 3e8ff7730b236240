// AmqpSubscriber: consumes change events on a thread of its own. On every
// (re)connection it declares its queue (by default exclusive, auto-delete
// and server-named: it lives as long as the connection, so a subscriber
// sees the events published while it is connected), binds it to the
// change-event exchange and consumes without acknowledgements. A lost
// connection is retried with backoff; the handlers say when it comes and
// goes, so a near cache can stop trusting its entries meanwhile.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/status.h"
#include "messaging/amqp/amqp_connection.h"

namespace polycrud {

struct AmqpDelivery {
  std::string_view routing_key;
  std::string_view message_id;
  std::string_view app_id;
  std::string_view body;
  bool redelivered = false;
};

struct AmqpSubscriberOptions {
  AmqpOptions amqp;
  std::string binding_key = "user.*";
  // Empty: an exclusive auto-delete queue named by the broker. A name: a
  // durable queue of that name that outlives the subscriber (events published
  // while it is away wait there), consumed with acknowledgements.
  std::string queue;
  std::int64_t backoff_min_ms = 100;
  std::int64_t backoff_max_ms = 5'000;
  // How often the consuming thread looks at Stop.
  std::int64_t poll_ms = 100;
};

class AmqpSubscriber {
 public:
  struct Handlers {
    // Runs on the subscriber's thread, in delivery order.
    std::function<void(const AmqpDelivery&)> on_message;
    // After the queue is bound and consuming.
    std::function<void()> on_connected;
    // After a connection that was consuming is lost (not on Stop), and after
    // each failed attempt to connect.
    std::function<void(const Status&)> on_disconnected;
  };

  AmqpSubscriber(AmqpSubscriberOptions options, Handlers handlers);
  ~AmqpSubscriber();
  AmqpSubscriber(const AmqpSubscriber&) = delete;
  AmqpSubscriber& operator=(const AmqpSubscriber&) = delete;

  void Start();
  void Stop();
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  std::uint64_t received() const { return received_.load(std::memory_order_relaxed); }

 private:
  void Loop();
  // Consumes on `connection` until it fails (its Status) or Stop (Ok).
  Status Consume(AmqpConnection& connection);
  bool Stopping();
  void Wait(std::int64_t ms);

  const AmqpSubscriberOptions options_;
  const Handlers handlers_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> received_{0};
};

}  // namespace polycrud
