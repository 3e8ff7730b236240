// ChangeEvents: the change-event machinery of one polycrud-server
// (docs/events.md). The relay publishes the outbox to RabbitMQ while this
// server holds the relay lease; the subscriber consumes every server's
// events on an exclusive queue of its own and makes the near cache forget
// each changed id. While the subscriber is not consuming, the near cache is
// not trusted (every lookup misses), since the events that would invalidate
// it are not arriving.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "cache/near/near_user_cache.h"
#include "core/event_log.h"
#include "core/outbox_relay.h"
#include "core/ports.h"
#include "messaging/amqp/amqp_publisher.h"
#include "messaging/amqp/amqp_subscriber.h"
#include "server/change_event_usage.h"
#include "storage/mysql/mysql_outbox.h"

namespace polycrud::server {

struct ChangeEventsOptions {
  AmqpOptions amqp;
  OutboxRelayOptions relay;
};

class ChangeEvents {
 public:
  // `clock` and `log` (null: none) must outlive this object.
  ChangeEvents(const MysqlOptions& mysql, ChangeEventsOptions options, const Clock& clock,
               EventLog* log);
  ~ChangeEvents();
  ChangeEvents(const ChangeEvents&) = delete;
  ChangeEvents& operator=(const ChangeEvents&) = delete;

  // The near cache to keep coherent (null: none); before Start. It is not
  // trusted until the subscriber consumes.
  void AttachNearCache(NearCacheSlots* near);
  // Starts the subscriber, and the relay when `relay`.
  void Start(bool relay = true);
  // Stops the subscriber and the relay (which gives its lease up).
  void Stop();
  // A write committed through this server.
  void Nudge() { relay_.Nudge(); }

  // Queries the outbox's backlog (one MariaDB round trip).
  ChangeEventUsage Usage();

 private:
  void OnMessage(const AmqpDelivery& delivery);

  const Clock& clock_;
  EventLog* const log_;
  MysqlOutbox outbox_;
  AmqpPublisher publisher_;
  OutboxRelay relay_;
  AmqpSubscriber subscriber_;
  NearCacheSlots* near_ = nullptr;
  std::atomic<bool> subscriber_failing_{false};
  std::atomic<std::uint64_t> invalidations_{0};
  std::atomic<std::uint64_t> malformed_{0};
  std::array<std::atomic<std::uint64_t>, kPropagationBucketsSeconds.size() + 1> propagation_{};
  std::atomic<std::uint64_t> propagation_sum_us_{0};
};

}  // namespace polycrud::server
