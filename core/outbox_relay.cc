#include "core/outbox_relay.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace polycrud {

OutboxRelay::OutboxRelay(EventOutbox& outbox, EventPublisher& publisher, const Clock& clock,
                         OutboxRelayOptions options, EventLog* log)
    : outbox_(outbox), publisher_(publisher), clock_(clock), options_(options), log_(log) {}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void OutboxRelay::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  holding_ = false;
  if (active()) {
    // The next relay need not wait for the lease to expire.
    (void)outbox_.ReleaseLease();
    SetActive(false, "stopped; lease given up");
  }
  publisher_.Disconnect();
}

void OutboxRelay::Nudge() {
  {
    std::lock_guard lock(mu_);
    nudged_ = true;
  }
  wake_.notify_one();
}

void OutboxRelay::Wait(std::int64_t ms) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return nudged_ || stopping_; });
  nudged_ = false;
}

void OutboxRelay::SetActive(bool active, std::string_view why) {
  if (active_.exchange(active) == active) return;
  if (log_ != nullptr) {
    log_->Record(active ? Event::kRelayActive : Event::kRelayStandby, "", why);
  }
}

StatusOr<bool> OutboxRelay::Hold() {
  const std::int64_t at_ms = clock_.MonotonicMs();
  StatusOr<bool> held = outbox_.HoldLease();
  holding_ = held.ok() && *held;
  if (!held.ok()) {
    SetActive(false, "the outbox cannot be reached: " + held.status().message());
    return held.status();
  }
  if (!holding_) {
    SetActive(false, "another server's relay holds the lease");
    return false;
  }
  lease_until_ms_ = at_ms + options_.lease_ms;
  SetActive(true, "took the relay lease: this server publishes the change events");
  return true;
}

StatusOr<std::size_t> OutboxRelay::RunOnce() {
  // Renewed while a publish still fits with room to spare: once the lease
  // left is less than max_publish_ms plus half of the rest (or taken, when
  // not held).
  const std::int64_t renew_below_ms =
      options_.max_publish_ms + (options_.lease_ms - options_.max_publish_ms) / 2;
  if (!holding_ || lease_until_ms_ - clock_.MonotonicMs() < renew_below_ms) {
    StatusOr<bool> held = Hold();
    if (!held.ok()) return held.status();
    if (!*held) return std::size_t{0};
  }

  StatusOr<std::vector<OutboxEvent>> batch = outbox_.Unsent(options_.batch);
  if (!batch.ok()) {
    holding_ = false;  // renewed (or lost) on the next round
    SetActive(false, "the outbox cannot be reached: " + batch.status().message());
    return batch.status();
  }
  if (batch->empty()) return std::size_t{0};
  if (!publisher_.connected()) {
    if (Status connected = publisher_.Connect(); !connected.ok()) return connected;
    // Connecting may have taken a while: renew before publishing.
    StatusOr<bool> held = Hold();
    if (!held.ok()) return held.status();
    if (!*held) return std::size_t{0};
  }
  // The fence: the whole publish must fit in the lease held.
  if (clock_.MonotonicMs() + options_.max_publish_ms >= lease_until_ms_) {
    return Status::Unavailable("the relay lease is too close to its end to publish");
  }
  if (Status published = publisher_.Publish(*batch); !published.ok()) {
    publisher_.Disconnect();
    return published;
  }
  std::vector<std::int64_t> seqs;
  seqs.reserve(batch->size());
  for (const OutboxEvent& event : *batch) seqs.push_back(event.seq);
  // If this fails the batch is published again: at least once.
  if (Status marked = outbox_.MarkSent(seqs, clock_.NowMs()); !marked.ok()) return marked;
  published_.fetch_add(batch->size(), std::memory_order_relaxed);
  return batch->size();
}

void OutboxRelay::MaybePrune() {
  const std::int64_t now = clock_.MonotonicMs();
  if (now < next_prune_ms_) return;
  next_prune_ms_ = now + options_.prune_every_ms;
  StatusOr<std::int64_t> pruned =
      outbox_.Prune(clock_.NowMs() - options_.retention_ms, options_.prune_limit);
  if (pruned.ok()) pruned_.fetch_add(static_cast<std::uint64_t>(*pruned));
}

void OutboxRelay::Loop() {
  std::int64_t backoff_ms = options_.backoff_min_ms;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    StatusOr<std::size_t> round = RunOnce();
    if (!round.ok()) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      if (!failing_ && log_ != nullptr) {
        log_->Record(Event::kEventsFailed, "",
                     "change events are not being published (retrying with backoff): " +
                         round.status().message());
      }
      failing_ = true;
      Wait(backoff_ms);
      backoff_ms = std::min(backoff_ms * 2, options_.backoff_max_ms);
      continue;
    }
    if (failing_) {
      failing_ = false;
      if (log_ != nullptr) log_->Record(Event::kEventsFlowing, "", "the relay works again");
    }
    backoff_ms = options_.backoff_min_ms;
    if (!active()) {
      Wait(options_.standby_poll_ms);
    } else if (*round == 0) {
      MaybePrune();
      Wait(options_.idle_poll_ms);
    } else if (*round < static_cast<std::size_t>(options_.batch)) {
      // Let a stream of writes fill the next round (not cut short by nudges).
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.coalesce_ms));
    }
    // A full batch: go on at once.
  }
}

}  // namespace polycrud
