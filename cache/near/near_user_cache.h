// NearUserCache: an optional in-process cache in front of another UserCache
// (RedisUserCache), so a hit costs no Redis round trip. Off unless the server
// is started with --near-cache-entries.
//
// On its own it is correct only when every write of the data set goes
// through this process (one server instance): a write made through another
// instance does not reach this one, which would then serve the older version
// until its entry expires (near-cache TTL). With change events (docs/
// events.md) each server forgets the entry of every id changed anywhere
// (Forget), and serves nothing from here while the events are not arriving
// (SetTrusted).
//
// Within one process it keeps docs/cache-protocol.md's guarantees. Every call that changes
// the inner cache (PutIfNewer, PutManyIfNewer, PutAbsent, PutTombstone,
// BeginWrite, EndWrite, SettleWrite)
// forgets the id here before it starts and marks the id's stripe as being
// changed until the inner call has returned (successful or not), bumping the
// stripe's sequence number at both ends. An entry read from the inner cache
// is stored here only if its stripe was neither changed nor being changed
// since before the inner read began. So a hit here returns what the inner
// cache held after every change of that id that had finished when the read
// began, as a read of the inner cache would: a client never sees a version
// older than its own acknowledged write (the core acknowledges a write only
// after its cache call returned), nor older than one it read before.
//
// Storage is a fixed array of `entries` slots (direct-mapped by id; a new
// entry replaces whatever held its slot), so memory is bounded. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "core/ports.h"

namespace polycrud {

struct NearCacheOptions {
  std::size_t entries = 100'000;
  // Bounds how long a row changed behind the service's back, or by another
  // instance, can still be served from here.
  std::chrono::milliseconds ttl{1000};
};

// The entries of a near cache: a fixed array of `entries` slots and the
// stripes that order changes against reads. Shared by every NearUserCache in
// front of the process's caches (one per runtime), so a change made through
// one is seen by all. Thread-safe.
class NearCacheSlots {
 public:
  explicit NearCacheSlots(NearCacheOptions options);

  // Hits and misses of Lookup (a miss goes to the inner cache).
  std::uint64_t hits() const;
  std::uint64_t misses() const;
  // What a Get would return from here now, without counting (for tests).
  std::optional<CacheEntry> Peek(std::int64_t id);

  // The entry if a fresh one for `id` is here (a hit); else false and the
  // sequence number Store needs.
  bool Lookup(std::int64_t id, CacheEntry& out, std::uint64_t& sequence);
  // Keeps `entry`, read from the inner cache after Lookup gave `sequence`,
  // unless a change of its stripe began since.
  void Store(std::int64_t id, const CacheEntry& entry, std::uint64_t sequence);
  // Around every change of the inner cache.
  void BeginChange(std::int64_t id);
  void EndChange(std::int64_t id);
  // Drops `id`'s entry, and a read of it under way keeps nothing: a change
  // made elsewhere (another server's write, told by a change event).
  void Forget(std::int64_t id);
  // Whether entries may be kept and served. Either way every entry is
  // dropped, and reads under way keep nothing. Untrusted, every lookup is a
  // miss: the change events that would invalidate entries are not arriving.
  void SetTrusted(bool trusted);
  bool trusted() const { return trusted_.load(std::memory_order_acquire); }

 private:
  static constexpr std::size_t kStripes = 64;
  struct Slot {
    std::int64_t id = 0;  // 0: empty (ids start at 1)
    std::chrono::steady_clock::time_point expires;
    CacheEntry entry;
  };
  struct alignas(64) Stripe {
    std::mutex mu;
    std::uint64_t sequence = 0;  // bumped as a change of an id of this stripe starts and ends
    int changing = 0;            // changes started and not finished
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
  };

  std::size_t SlotOf(std::int64_t id) const;
  Stripe& StripeOf(std::size_t slot) { return stripes_[slot % kStripes]; }
  // A counter summed over the stripes.
  std::uint64_t Sum(std::uint64_t Stripe::*counter) const;

  const NearCacheOptions options_;
  std::vector<Slot> slots_;
  std::unique_ptr<Stripe[]> stripes_;
  std::atomic<bool> trusted_{true};
};

class NearUserCache final : public UserCache {
 public:
  // In front of `inner`, with entries of its own. `inner` must outlive this.
  NearUserCache(UserCache& inner, NearCacheOptions options);
  // In front of `inner`, sharing `slots` with other NearUserCaches of the
  // process. Both must outlive this object.
  NearUserCache(UserCache& inner, NearCacheSlots& slots);

  std::uint64_t hits() const { return slots_.hits(); }
  std::uint64_t misses() const { return slots_.misses(); }
  std::optional<CacheEntry> Peek(std::int64_t id) { return slots_.Peek(id); }

  // UserCache:
  StatusOr<CacheEntry> Get(std::int64_t id) override;
  StatusOr<std::vector<CacheEntry>> MultiGet(std::span<const std::int64_t> ids) override;
  StatusOr<bool> PutIfNewer(const User& user) override;
  StatusOr<std::size_t> PutManyIfNewer(std::span<const User> users) override;
  StatusOr<bool> PutAbsent(std::int64_t id) override;
  Status PutTombstone(std::int64_t id, std::int64_t deleted_version) override;
  Status BeginWrite(std::int64_t id) override;
  Status EndWrite(std::int64_t id, const WrittenEntry& written) override;
  Status SettleWrite(std::int64_t id, const WrittenEntry& written) override;
  Status Ping() override;

 private:
  UserCache& inner_;
  std::unique_ptr<NearCacheSlots> own_slots_;  // null when shared
  NearCacheSlots& slots_;
};

}  // namespace polycrud
