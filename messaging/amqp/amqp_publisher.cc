#include "messaging/amqp/amqp_publisher.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace polycrud {

AmqpPublisher::AmqpPublisher(AmqpOptions options) : options_(std::move(options)) {}

AmqpPublisher::~AmqpPublisher() = default;

void AmqpPublisher::Disconnect() { connection_.reset(); }

Status AmqpPublisher::Connect() {
  StatusOr<std::unique_ptr<AmqpConnection>> opened = AmqpConnection::Open(options_);
  if (!opened.ok()) return opened.status();
  amqp_confirm_select((*opened)->state(), AmqpConnection::kChannel);
  if (Status s = (*opened)->LastReply("confirm.select"); !s.ok()) return s;
  connection_ = std::move(*opened);
  next_tag_ = 1;
  return Status::Ok();
}

Status AmqpPublisher::Publish(std::span<const OutboxEvent> events) {
  if (events.empty()) return Status::Ok();
  if (connection_ == nullptr) {
    if (Status s = Connect(); !s.ok()) return s;
  }
  amqp_connection_state_t state = connection_->state();
  const std::uint64_t first = next_tag_;
  for (const OutboxEvent& event : events) {
    amqp_basic_properties_t props{};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_TYPE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = 2;  // persistent
    props.message_id = AmqpBytes(event.event_id);
    props.timestamp = static_cast<std::uint64_t>(event.occurred_at_ms / 1000);
    props.type = AmqpBytes(event.type);
    if (!options_.app_id.empty()) {
      props._flags |= AMQP_BASIC_APP_ID_FLAG;
      props.app_id = AmqpBytes(options_.app_id);
    }
    const int rc = amqp_basic_publish(state, AmqpConnection::kChannel, AmqpBytes(options_.exchange),
                                      AmqpBytes(event.type), /*mandatory=*/0, /*immediate=*/0,
                                      &props, AmqpBytes(event.body));
    if (rc != AMQP_STATUS_OK) return AmqpConnection::FromLibraryStatus(rc, "basic.publish");
    ++next_tag_;
  }
  Status confirmed = AwaitConfirms(first, next_tag_ - 1);
  amqp_maybe_release_buffers(state);
  return confirmed;
}

// Reads frames until every tag in [first, last] is acknowledged: a nack, a
// closed channel or the rpc timeout ends the wait with an error.
Status AmqpPublisher::AwaitConfirms(std::uint64_t first, std::uint64_t last) {
  amqp_connection_state_t state = connection_->state();
  std::vector<bool> acked(last - first + 1, false);
  std::size_t left = acked.size();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.rpc_timeout_ms);
  const auto ack = [&](std::uint64_t tag, bool multiple) {
    if (tag < first || (!multiple && tag > last)) return;
    const std::uint64_t to = std::min(tag, last);
    for (std::uint64_t t = multiple ? first : to; t <= to; ++t) {
      if (!acked[t - first]) {
        acked[t - first] = true;
        --left;
      }
    }
  };
  while (left > 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      return Status::Unavailable("message broker: no confirm within " +
                                 std::to_string(options_.rpc_timeout_ms) + " ms");
    }
    const auto remaining_us =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - now).count();
    timeval timeout = AmqpTimeval(remaining_us);
    amqp_frame_t frame;
    const int rc = amqp_simple_wait_frame_noblock(state, &frame, &timeout);
    if (rc == AMQP_STATUS_TIMEOUT) continue;
    if (rc != AMQP_STATUS_OK) return AmqpConnection::FromLibraryStatus(rc, "waiting for confirms");
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    switch (frame.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        const auto* m = static_cast<const amqp_basic_ack_t*>(frame.payload.method.decoded);
        ack(m->delivery_tag, m->multiple != 0);
        break;
      }
      case AMQP_BASIC_NACK_METHOD:
        return Status::Unavailable("message broker: an event was refused (nack)");
      case AMQP_CHANNEL_CLOSE_METHOD: {
        const auto* m = static_cast<const amqp_channel_close_t*>(frame.payload.method.decoded);
        return Status::Unavailable("message broker: channel closed: " +
                                   std::string(AmqpView(m->reply_text)));
      }
      case AMQP_CONNECTION_CLOSE_METHOD: {
        const auto* m = static_cast<const amqp_connection_close_t*>(frame.payload.method.decoded);
        return Status::Unavailable("message broker: connection closed: " +
                                   std::string(AmqpView(m->reply_text)));
      }
      default:
        break;
    }
  }
  return Status::Ok();
}

}  // namespace polycrud
