// MemoryOutbox and RecordingPublisher: in-memory fakes of the EventOutbox
// and EventPublisher ports, for unit tests of the relay. One MemoryOutbox
// holds the events and the lease; each relay sees it through a View of its
// own (its own lease owner). Thread-safe.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/ports.h"
#include "core/testing/fake_clock.h"

namespace polycrud::testing {

class MemoryOutbox {
 public:
  explicit MemoryOutbox(const FakeClock& clock, std::int64_t lease_ms = 10'000)
      : clock_(clock), lease_ms_(lease_ms) {}

  // Adds an unsent event for `user_id` at `version`; its seq and event_id.
  OutboxEvent Add(std::int64_t user_id, std::int64_t version) {
    const std::lock_guard lock(mu_);
    OutboxEvent event;
    event.seq = ++last_seq_;
    event.event_id = "event-" + std::to_string(event.seq);
    event.type = "user.updated";
    event.user_id = user_id;
    event.version = version;
    event.occurred_at_ms = clock_.NowMs();
    event.body = "{\"id\":" + std::to_string(user_id) + "}";
    events_[event.seq].event = event;
    return event;
  }
  std::size_t unsent() const {
    const std::lock_guard lock(mu_);
    return static_cast<std::size_t>(std::count_if(events_.begin(), events_.end(),
                                                  [](const auto& e) { return !e.second.sent; }));
  }
  std::size_t size() const {
    const std::lock_guard lock(mu_);
    return events_.size();
  }
  // HoldLease calls so far, of every View.
  int lease_calls() const { return lease_calls_.load(); }
  // Makes the next `n` calls of every View fail (the database is down).
  void FailNext(int n) { failures_left_.store(n); }
  // Makes the next `n` MarkSent calls fail (after the publish succeeded).
  void FailNextMarks(int n) { mark_failures_left_.store(n); }

  class View final : public EventOutbox {
   public:
    View(MemoryOutbox& outbox, std::string owner) : outbox_(outbox), owner_(std::move(owner)) {}
    StatusOr<bool> HoldLease() override {
      outbox_.lease_calls_.fetch_add(1);
      if (outbox_.Fail()) return Status::Unavailable("database unavailable");
      const std::lock_guard lock(outbox_.mu_);
      const std::int64_t now = outbox_.clock_.MonotonicMs();
      if (outbox_.lease_owner_ != owner_ && now < outbox_.lease_until_ms_) return false;
      outbox_.lease_owner_ = owner_;
      outbox_.lease_until_ms_ = now + outbox_.lease_ms_;
      return true;
    }
    Status ReleaseLease() override {
      const std::lock_guard lock(outbox_.mu_);
      if (outbox_.lease_owner_ == owner_) outbox_.lease_until_ms_ = 0;
      return Status::Ok();
    }
    StatusOr<std::vector<OutboxEvent>> Unsent(std::int32_t limit) override {
      if (outbox_.Fail()) return Status::Unavailable("database unavailable");
      const std::lock_guard lock(outbox_.mu_);
      std::vector<OutboxEvent> out;
      for (const auto& [seq, stored] : outbox_.events_) {
        if (stored.sent) continue;
        if (out.size() >= static_cast<std::size_t>(limit)) break;
        out.push_back(stored.event);
      }
      return out;
    }
    Status MarkSent(std::span<const std::int64_t> seqs, std::int64_t now_ms) override {
      if (outbox_.Fail() || outbox_.mark_failures_left_.fetch_sub(1) > 0) {
        return Status::Unavailable("database unavailable");
      }
      const std::lock_guard lock(outbox_.mu_);
      for (const std::int64_t seq : seqs) {
        auto it = outbox_.events_.find(seq);
        if (it != outbox_.events_.end()) {
          it->second.sent = true;
          it->second.sent_at_ms = now_ms;
        }
      }
      return Status::Ok();
    }
    StatusOr<std::int64_t> Prune(std::int64_t sent_before_ms, std::int32_t limit) override {
      const std::lock_guard lock(outbox_.mu_);
      std::int64_t pruned = 0;
      for (auto it = outbox_.events_.begin(); it != outbox_.events_.end() && pruned < limit;) {
        if (it->second.sent && it->second.sent_at_ms < sent_before_ms) {
          it = outbox_.events_.erase(it);
          ++pruned;
        } else {
          ++it;
        }
      }
      return pruned;
    }

   private:
    MemoryOutbox& outbox_;
    const std::string owner_;
  };

 private:
  struct Stored {
    OutboxEvent event;
    bool sent = false;
    std::int64_t sent_at_ms = 0;
  };
  bool Fail() { return failures_left_.fetch_sub(1) > 0; }

  const FakeClock& clock_;
  const std::int64_t lease_ms_;
  mutable std::mutex mu_;
  std::map<std::int64_t, Stored> events_;  // guarded by mu_
  std::int64_t last_seq_ = 0;              // guarded by mu_
  std::string lease_owner_;                // guarded by mu_
  std::int64_t lease_until_ms_ = 0;        // guarded by mu_
  std::atomic<int> failures_left_{0};
  std::atomic<int> mark_failures_left_{0};
  std::atomic<int> lease_calls_{0};
};

// Records what was published, by whom, and whether two publishers were ever
// inside Publish at once.
class PublishLog {
 public:
  struct Entry {
    std::string publisher;
    OutboxEvent event;
  };
  void Enter() {
    if (inside_.fetch_add(1) > 0) overlapped_.store(true);
  }
  void Leave() { inside_.fetch_sub(1); }
  void Add(const std::string& publisher, const OutboxEvent& event) {
    const std::lock_guard lock(mu_);
    entries_.push_back({publisher, event});
  }
  std::vector<Entry> entries() const {
    const std::lock_guard lock(mu_);
    return entries_;
  }
  bool overlapped() const { return overlapped_.load(); }

 private:
  mutable std::mutex mu_;
  std::vector<Entry> entries_;  // guarded by mu_
  std::atomic<int> inside_{0};
  std::atomic<bool> overlapped_{false};
};

class RecordingPublisher final : public EventPublisher {
 public:
  RecordingPublisher(PublishLog& log, std::string name) : log_(log), name_(std::move(name)) {}
  // Makes the next `n` Publish calls fail after publishing the first half
  // of their batch (the broker went away mid-batch).
  void FailNext(int n) { failures_left_.store(n); }
  int connects() const { return connects_.load(); }

  bool connected() const override { return connected_.load(); }
  Status Connect() override {
    connects_.fetch_add(1);
    connected_.store(true);
    return Status::Ok();
  }
  Status Publish(std::span<const OutboxEvent> events) override {
    if (!connected_.load()) (void)Connect();
    log_.Enter();
    const bool fail = failures_left_.fetch_sub(1) > 0;
    const std::size_t count = fail ? events.size() / 2 : events.size();
    for (std::size_t i = 0; i < count; ++i) log_.Add(name_, events[i]);
    log_.Leave();
    return fail ? Status::Unavailable("message broker: connection reset") : Status::Ok();
  }
  void Disconnect() override { connected_.store(false); }

 private:
  PublishLog& log_;
  const std::string name_;
  std::atomic<int> failures_left_{0};
  std::atomic<int> connects_{0};
  std::atomic<bool> connected_{false};
};

}  // namespace polycrud::testing
