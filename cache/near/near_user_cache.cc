#include "cache/near/near_user_cache.h"

#include <utility>

namespace polycrud {

NearUserCache::NearUserCache(UserCache& inner, NearCacheOptions options)
    : inner_(inner),
      options_(options),
      slots_(options.entries == 0 ? 1 : options.entries),
      stripes_(std::make_unique<Stripe[]>(kStripes)) {}

std::size_t NearUserCache::SlotOf(std::int64_t id) const {
  // Fibonacci hashing spreads consecutive ids over slots and stripes.
  const std::uint64_t h = static_cast<std::uint64_t>(id) * 0x9E3779B97F4A7C15ULL;
  return static_cast<std::size_t>((h >> 17) % slots_.size());
}

std::uint64_t NearUserCache::Sum(std::uint64_t Stripe::*counter) const {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < kStripes; ++i) {
    std::lock_guard lock(stripes_[i].mu);
    total += stripes_[i].*counter;
  }
  return total;
}

std::uint64_t NearUserCache::hits() const { return Sum(&Stripe::hits); }
std::uint64_t NearUserCache::misses() const { return Sum(&Stripe::misses); }

std::optional<CacheEntry> NearUserCache::Peek(std::int64_t id) {
  const std::size_t slot_index = SlotOf(id);
  std::lock_guard lock(StripeOf(slot_index).mu);
  const Slot& slot = slots_[slot_index];
  if (slot.id != id || std::chrono::steady_clock::now() >= slot.expires) return std::nullopt;
  return slot.entry;
}

bool NearUserCache::Lookup(std::int64_t id, CacheEntry& out, std::uint64_t& sequence) {
  const std::size_t slot_index = SlotOf(id);
  Stripe& stripe = StripeOf(slot_index);
  std::lock_guard lock(stripe.mu);
  const Slot& slot = slots_[slot_index];
  if (slot.id == id && std::chrono::steady_clock::now() < slot.expires) {
    ++stripe.hits;
    out = slot.entry;
    return true;
  }
  ++stripe.misses;
  sequence = stripe.sequence;
  return false;
}

void NearUserCache::Store(std::int64_t id, const CacheEntry& entry, std::uint64_t sequence) {
  if (entry.kind == CacheEntry::Kind::kMiss) return;
  const std::size_t slot_index = SlotOf(id);
  Stripe& stripe = StripeOf(slot_index);
  std::lock_guard lock(stripe.mu);
  // A change of this stripe since the inner read began, or still running,
  // may have made what was read stale: keep nothing.
  if (stripe.sequence != sequence || stripe.changing > 0) return;
  Slot& slot = slots_[slot_index];
  slot.id = id;
  slot.expires = std::chrono::steady_clock::now() + options_.ttl;
  slot.entry = entry;
}

void NearUserCache::BeginChange(std::int64_t id) {
  const std::size_t slot_index = SlotOf(id);
  Stripe& stripe = StripeOf(slot_index);
  std::lock_guard lock(stripe.mu);
  ++stripe.changing;
  ++stripe.sequence;
  Slot& slot = slots_[slot_index];
  if (slot.id == id) {
    slot.id = 0;
    slot.entry = CacheEntry{};
  }
}

void NearUserCache::EndChange(std::int64_t id) {
  Stripe& stripe = StripeOf(SlotOf(id));
  std::lock_guard lock(stripe.mu);
  --stripe.changing;
  ++stripe.sequence;
}

StatusOr<CacheEntry> NearUserCache::Get(std::int64_t id) {
  CacheEntry entry;
  std::uint64_t sequence = 0;
  if (Lookup(id, entry, sequence)) return entry;
  StatusOr<CacheEntry> read = inner_.Get(id);
  if (read.ok()) Store(id, *read, sequence);
  return read;
}

StatusOr<std::vector<CacheEntry>> NearUserCache::MultiGet(std::span<const std::int64_t> ids) {
  std::vector<CacheEntry> out(ids.size());
  std::vector<std::int64_t> missing;
  std::vector<std::size_t> missing_at;
  std::vector<std::uint64_t> sequences;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::uint64_t sequence = 0;
    if (Lookup(ids[i], out[i], sequence)) continue;
    missing.push_back(ids[i]);
    missing_at.push_back(i);
    sequences.push_back(sequence);
  }
  if (missing.empty()) return out;
  StatusOr<std::vector<CacheEntry>> read = inner_.MultiGet(missing);
  if (!read.ok()) return read.status();
  for (std::size_t j = 0; j < missing.size(); ++j) {
    Store(missing[j], (*read)[j], sequences[j]);
    out[missing_at[j]] = std::move((*read)[j]);
  }
  return out;
}

StatusOr<bool> NearUserCache::PutIfNewer(const User& user) {
  BeginChange(user.id);
  StatusOr<bool> stored = inner_.PutIfNewer(user);
  EndChange(user.id);
  return stored;
}

StatusOr<std::size_t> NearUserCache::PutManyIfNewer(std::span<const User> users) {
  for (const User& user : users) BeginChange(user.id);
  StatusOr<std::size_t> refused = inner_.PutManyIfNewer(users);
  for (const User& user : users) EndChange(user.id);
  return refused;
}

StatusOr<bool> NearUserCache::PutAbsent(std::int64_t id) {
  BeginChange(id);
  StatusOr<bool> stored = inner_.PutAbsent(id);
  EndChange(id);
  return stored;
}

Status NearUserCache::PutTombstone(std::int64_t id, std::int64_t deleted_version) {
  BeginChange(id);
  Status status = inner_.PutTombstone(id, deleted_version);
  EndChange(id);
  return status;
}

Status NearUserCache::Ping() { return inner_.Ping(); }

}  // namespace polycrud
