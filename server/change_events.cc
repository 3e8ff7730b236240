#include "server/change_events.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace polycrud::server {
namespace {

// Every message says which relay published it (the lease owner,
// "host:pid:random").
AmqpOptions WithAppId(AmqpOptions options, const std::string& owner) {
  options.app_id = owner;
  return options;
}

// A publish lasts at most the publisher's wait for its confirms (the rpc
// timeout), with a margin: what the relay's fence must leave of the lease.
OutboxRelayOptions WithPublishBound(OutboxRelayOptions relay, const AmqpOptions& amqp) {
  relay.max_publish_ms = amqp.rpc_timeout_ms + 500;
  return relay;
}

}  // namespace

ChangeEvents::ChangeEvents(const MysqlOptions& mysql, ChangeEventsOptions options,
                           const Clock& clock, EventLog* log)
    : clock_(clock),
      log_(log),
      outbox_(mysql, options.relay.lease_ms),
      publisher_(WithAppId(options.amqp, outbox_.lease().owner())),
      relay_(outbox_, publisher_, clock, WithPublishBound(options.relay, options.amqp), log),
      subscriber_(AmqpSubscriberOptions{.amqp = options.amqp},
                  AmqpSubscriber::Handlers{
                      .on_message = [this](const AmqpDelivery& delivery) { OnMessage(delivery); },
                      .on_connected =
                          [this] {
                            if (near_ != nullptr) near_->SetTrusted(true);
                            subscriber_failing_.store(false);
                            if (log_ != nullptr) {
                              log_->Record(Event::kEventsFlowing, "",
                                           "consuming change events; the near cache serves");
                            }
                          },
                      .on_disconnected =
                          [this](const Status& why) {
                            if (near_ != nullptr) near_->SetTrusted(false);
                            // Once per outage, not once per attempt to reconnect.
                            if (!subscriber_failing_.exchange(true) && log_ != nullptr) {
                              log_->Record(
                                  Event::kEventsFailed, "",
                                  "not consuming change events (" + why.message() +
                                      "); the near cache serves nothing until they flow again");
                            }
                          },
                  }) {}

ChangeEvents::~ChangeEvents() { Stop(); }

void ChangeEvents::AttachNearCache(NearCacheSlots* near) {
  near_ = near;
  if (near_ != nullptr) near_->SetTrusted(false);
}

void ChangeEvents::Start(bool relay) {
  subscriber_.Start();
  if (relay) relay_.Start();
}

void ChangeEvents::Stop() {
  subscriber_.Stop();
  relay_.Stop();
}

void ChangeEvents::OnMessage(const AmqpDelivery& delivery) {
  const nlohmann::json body = nlohmann::json::parse(delivery.body, nullptr, false);
  if (!body.is_object() || !body.contains("id") || !body["id"].is_number_integer()) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (near_ != nullptr) near_->Forget(body["id"].get<std::int64_t>());
  invalidations_.fetch_add(1, std::memory_order_relaxed);
  if (body.contains("occurred_at_ms") && body["occurred_at_ms"].is_number_integer()) {
    const std::int64_t delay_ms =
        std::max<std::int64_t>(0, clock_.NowMs() - body["occurred_at_ms"].get<std::int64_t>());
    const double delay_s = static_cast<double>(delay_ms) / 1000.0;
    const auto bucket =
        static_cast<std::size_t>(std::lower_bound(kPropagationBucketsSeconds.begin(),
                                                  kPropagationBucketsSeconds.end(), delay_s) -
                                 kPropagationBucketsSeconds.begin());
    propagation_[bucket].fetch_add(1, std::memory_order_relaxed);
    propagation_sum_us_.fetch_add(static_cast<std::uint64_t>(delay_ms) * 1000,
                                  std::memory_order_relaxed);
  }
}

ChangeEventUsage ChangeEvents::Usage() {
  ChangeEventUsage usage;
  usage.relay_active = relay_.active();
  usage.published = relay_.published();
  usage.relay_failures = relay_.failures();
  usage.pruned = relay_.pruned();
  if (StatusOr<MysqlOutbox::Backlog> backlog = outbox_.Pending(); backlog.ok()) {
    usage.backlog_events = backlog->events;
    usage.backlog_oldest_age_ms =
        backlog->events > 0 ? std::max<std::int64_t>(0, clock_.NowMs() - backlog->oldest_ms) : 0;
  }
  usage.subscribed = subscriber_.connected();
  usage.received = subscriber_.received();
  usage.invalidations = invalidations_.load(std::memory_order_relaxed);
  usage.malformed = malformed_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < propagation_.size(); ++i) {
    usage.propagation[i] = propagation_[i].load(std::memory_order_relaxed);
  }
  usage.propagation_sum_s =
      static_cast<double>(propagation_sum_us_.load(std::memory_order_relaxed)) / 1e6;
  return usage;
}

}  // namespace polycrud::server
