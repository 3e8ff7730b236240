#include "messaging/amqp/amqp_subscriber.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

namespace polycrud {

AmqpSubscriber::AmqpSubscriber(AmqpSubscriberOptions options, Handlers handlers)
    : options_(std::move(options)), handlers_(std::move(handlers)) {}

AmqpSubscriber::~AmqpSubscriber() { Stop(); }

void AmqpSubscriber::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void AmqpSubscriber::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool AmqpSubscriber::Stopping() {
  std::lock_guard lock(mu_);
  return stopping_;
}

void AmqpSubscriber::Wait(std::int64_t ms) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

void AmqpSubscriber::Loop() {
  std::int64_t backoff_ms = options_.backoff_min_ms;
  while (!Stopping()) {
    StatusOr<std::unique_ptr<AmqpConnection>> opened = AmqpConnection::Open(options_.amqp);
    Status ended = opened.ok() ? Consume(**opened) : opened.status();
    const bool was_connected = connected_.exchange(false, std::memory_order_acq_rel);
    if (Stopping()) return;
    if (handlers_.on_disconnected) handlers_.on_disconnected(ended);
    if (was_connected) backoff_ms = options_.backoff_min_ms;
    Wait(backoff_ms);
    backoff_ms = std::min(backoff_ms * 2, options_.backoff_max_ms);
  }
}

Status AmqpSubscriber::Consume(AmqpConnection& connection) {
  amqp_connection_state_t state = connection.state();
  const amqp_channel_t channel = AmqpConnection::kChannel;
  const bool named = !options_.queue.empty();
  amqp_queue_declare_ok_t* declared =
      amqp_queue_declare(state, channel, AmqpBytes(options_.queue), /*passive=*/0,
                         /*durable=*/named ? 1 : 0, /*exclusive=*/named ? 0 : 1,
                         /*auto_delete=*/named ? 0 : 1, amqp_empty_table);
  if (Status s = connection.LastReply("queue.declare"); !s.ok()) return s;
  const std::string queue(AmqpView(declared->queue));
  amqp_queue_bind(state, channel, AmqpBytes(queue), AmqpBytes(options_.amqp.exchange),
                  AmqpBytes(options_.binding_key), amqp_empty_table);
  if (Status s = connection.LastReply("queue.bind"); !s.ok()) return s;
  // A named queue is consumed with acknowledgements, each sent after the
  // handler ran: an event is never lost between the queue and the handler.
  const bool acks = named;
  amqp_basic_consume(state, channel, AmqpBytes(queue), amqp_empty_bytes, /*no_local=*/0,
                     /*no_ack=*/acks ? 0 : 1, /*exclusive=*/0, amqp_empty_table);
  if (Status s = connection.LastReply("basic.consume"); !s.ok()) return s;

  connected_.store(true, std::memory_order_release);
  if (handlers_.on_connected) handlers_.on_connected();

  while (!Stopping()) {
    amqp_maybe_release_buffers(state);
    timeval timeout = AmqpTimeval(options_.poll_ms * 1000);
    amqp_envelope_t envelope;
    const amqp_rpc_reply_t reply = amqp_consume_message(state, &envelope, &timeout, 0);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
      received_.fetch_add(1, std::memory_order_relaxed);
      if (handlers_.on_message) {
        const amqp_basic_properties_t& props = envelope.message.properties;
        AmqpDelivery delivery;
        delivery.routing_key = AmqpView(envelope.routing_key);
        if ((props._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0) {
          delivery.message_id = AmqpView(props.message_id);
        }
        if ((props._flags & AMQP_BASIC_APP_ID_FLAG) != 0) delivery.app_id = AmqpView(props.app_id);
        delivery.body = AmqpView(envelope.message.body);
        delivery.redelivered = envelope.redelivered != 0;
        handlers_.on_message(delivery);
      }
      const int acked =
          acks ? amqp_basic_ack(state, channel, envelope.delivery_tag, /*multiple=*/0) : 0;
      amqp_destroy_envelope(&envelope);
      if (acked != AMQP_STATUS_OK) return AmqpConnection::FromLibraryStatus(acked, "basic.ack");
      continue;
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_TIMEOUT) {
      continue;
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      // A frame other than a delivery: a close from the broker ends this
      // connection; anything else is skipped.
      amqp_frame_t frame;
      const int rc = amqp_simple_wait_frame(state, &frame);
      if (rc != AMQP_STATUS_OK) return AmqpConnection::FromLibraryStatus(rc, "reading a frame");
      if (frame.frame_type == AMQP_FRAME_METHOD &&
          (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
           frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        return Status::Unavailable("message broker: closed the connection");
      }
      continue;
    }
    return AmqpConnection::FromReply(reply, "consume");
  }
  return Status::Ok();
}

}  // namespace polycrud
