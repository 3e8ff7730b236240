// OutboxRelay: publishes the change events of the outbox (docs/events.md).
//
// One relay publishes at a time among every server: the one holding the
// outbox's lease. It takes unsent events in seq order, publishes a batch,
// waits for the broker's confirms and then marks the batch sent; a batch
// that failed (or whose marking failed) is published again, so delivery is
// at least once, with the same event_id. A lease, rather than batches
// claimed with SELECT ... FOR UPDATE SKIP LOCKED by every server, keeps the
// order per user: two relays with a batch each could publish a user's later
// version first.
//
// The lease also fences: a batch is published only while the lease taken
// (or renewed) before it has at least max_publish_ms left, so a relay that
// stalls and loses its lease cannot still be publishing once another took
// it over (short of a pause inside one publish call). The holder renews it
// when what is left falls below max_publish_ms plus half the rest, not every
// round: each renewal is a commit.
//
// Writes never wait for it: a write through this server nudges it, else it
// looks every idle_poll_ms. Broker failures back off from backoff_min_ms to
// backoff_max_ms; sent events older than retention_ms are pruned.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "core/event_log.h"
#include "core/ports.h"

namespace polycrud {

struct OutboxRelayOptions {
  std::int32_t batch = 500;
  std::int64_t idle_poll_ms = 20;
  // After a round that published less than a batch, the relay waits this
  // long before the next, so that under a steady stream of writes a round
  // (a fetch, a round of confirms, one UPDATE marking them) carries many
  // events rather than one; it bounds the rounds to 1000 / coalesce_ms a
  // second and adds at most this much to an event's delay.
  std::int64_t coalesce_ms = 5;
  // How often a relay without the lease tries to take it.
  std::int64_t standby_poll_ms = 1000;
  // The outbox's lease length, and the longest one Publish may take once
  // connected (the publisher's confirm timeout): a batch needs this much
  // lease left.
  std::int64_t lease_ms = 10'000;
  std::int64_t max_publish_ms = 3'000;
  std::int64_t backoff_min_ms = 100;
  std::int64_t backoff_max_ms = 5'000;
  std::int64_t retention_ms = 24LL * 3600 * 1000;
  std::int64_t prune_every_ms = 60'000;
  std::int32_t prune_limit = 10'000;
};

class OutboxRelay {
 public:
  // `outbox`, `publisher`, `clock` and `log` (null: none) must outlive this.
  OutboxRelay(EventOutbox& outbox, EventPublisher& publisher, const Clock& clock,
              OutboxRelayOptions options, EventLog* log = nullptr);
  ~OutboxRelay();
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  // Runs the relay on a thread of its own until Stop.
  void Start();
  // Stops the thread and gives the lease up.
  void Stop();
  // A change committed: look for it now rather than at the next poll.
  void Nudge();

  // One round, on the caller's thread: holds the lease, publishes one batch
  // and marks it sent. The number of events published (0: nothing to do, or
  // no lease), or the error that stopped the round.
  StatusOr<std::size_t> RunOnce();

  bool active() const { return active_.load(std::memory_order_relaxed); }
  std::uint64_t published() const { return published_.load(std::memory_order_relaxed); }
  std::uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  std::uint64_t pruned() const { return pruned_.load(std::memory_order_relaxed); }

 private:
  void Loop();
  // Takes or renews the lease (lease_until_ms_ from now); false while
  // another relay holds it.
  StatusOr<bool> Hold();
  void SetActive(bool active, std::string_view why);
  void Wait(std::int64_t ms);
  void MaybePrune();

  EventOutbox& outbox_;
  EventPublisher& publisher_;
  const Clock& clock_;
  const OutboxRelayOptions options_;
  EventLog* const log_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool nudged_ = false;    // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;

  std::int64_t lease_until_ms_ = 0;  // monotonic; the relay's thread only
  bool holding_ = false;             // the relay's thread only
  std::int64_t next_prune_ms_ = 0;   // monotonic; the relay's thread only
  bool failing_ = false;             // the relay's thread only
  std::atomic<bool> active_{false};
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> pruned_{0};
};

}  // namespace polycrud
