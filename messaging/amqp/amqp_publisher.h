// AmqpPublisher: the EventPublisher port on RabbitMQ. Publishes each event
// to the change-event exchange with its type as the routing key, persistent
// (delivery mode 2), its event_id as the message id, on a channel in
// confirm mode, and returns once the broker acknowledged every one (or the
// rpc timeout passed). Connects on first use and after Disconnect. Used by
// the relay's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "core/ports.h"
#include "messaging/amqp/amqp_connection.h"

namespace polycrud {

class AmqpPublisher final : public EventPublisher {
 public:
  explicit AmqpPublisher(AmqpOptions options);
  ~AmqpPublisher() override;

  bool connected() const override { return connection_ != nullptr; }
  Status Connect() override;
  Status Publish(std::span<const OutboxEvent> events) override;
  void Disconnect() override;

 private:
  Status AwaitConfirms(std::uint64_t first, std::uint64_t last);

  const AmqpOptions options_;
  std::unique_ptr<AmqpConnection> connection_;
  std::uint64_t next_tag_ = 1;  // the delivery tag of the next publish on this channel
};

}  // namespace polycrud
