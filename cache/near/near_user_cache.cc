#include "cache/near/near_user_cache.h"

#include <utility>

namespace polycrud {

NearCacheSlots::NearCacheSlots(NearCacheOptions options)
    : options_(options),
      slots_(options.entries == 0 ? 1 : options.entries),
      stripes_(std::make_unique<Stripe[]>(kStripes)) {}

NearUserCache::NearUserCache(UserCache& inner, NearCacheOptions options)
    : inner_(inner), own_slots_(std::make_unique<NearCacheSlots>(options)), slots_(*own_slots_) {}

NearUserCache::NearUserCache(UserCache& inner, NearCacheSlots& slots)
    : inner_(inner), slots_(slots) {}

std::size_t NearCacheSlots::SlotOf(std::int64_t id) const {
  // Fibonacci hashing spreads consecutive ids over slots and stripes.
  const std::uint64_t h = static_cast<std::uint64_t>(id) * 0x9E3779B97F4A7C15ULL;
  return static_cast<std::size_t>((h >> 17) % slots_.size());
}

std::uint64_t NearCacheSlots::Sum(std::uint64_t Stripe::*counter) const {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < kStripes; ++i) {
    std::lock_guard lock(stripes_[i].mu);
    total += stripes_[i].*counter;
  }
  return total;
}

std::uint64_t NearCacheSlots::hits() const { return Sum(&Stripe::hits); }
std::uint64_t NearCacheSlots::misses() const { return Sum(&Stripe::misses); }

std::optional<CacheEntry> NearCacheSlots::Peek(std::int64_t id) {
  const std::size_t slot_index = SlotOf(id);
  std::lock_guard lock(StripeOf(slot_index).mu);
  const Slot& slot = slots_[slot_index];
  if (slot.id != id || std::chrono::steady_clock::now() >= slot.expires) return std::nullopt;
  return slot.entry;
}

bool NearCacheSlots::Lookup(std::int64_t id, CacheEntry& out, std::uint64_t& sequence) {
  const std::size_t slot_index = SlotOf(id);
  Stripe& stripe = StripeOf(slot_index);
  std::lock_guard lock(stripe.mu);
  const Slot& slot = slots_[slot_index];
  if (slot.id == id && trusted() && std::chrono::steady_clock::now() < slot.expires) {
    ++stripe.hits;
    out = slot.entry;
    return true;
  }
  ++stripe.misses;
  sequence = stripe.sequence;
  return false;
}

void NearCacheSlots::Store(std::int64_t id, const CacheEntry& entry, std::uint64_t sequence) {
  if (entry.kind == CacheEntry::Kind::kMiss || entry.kind == CacheEntry::Kind::kWriting) return;
  const std::size_t slot_index = SlotOf(id);
  Stripe& stripe = StripeOf(slot_index);
  std::lock_guard lock(stripe.mu);
  // A change of this stripe since the inner read began, or still running,
  // may have made what was read stale: keep nothing.
  if (stripe.sequence != sequence || stripe.changing > 0 || !trusted()) return;
  Slot& slot = slots_[slot_index];
  slot.id = id;
  slot.expires = std::chrono::steady_clock::now() + options_.ttl;
  slot.entry = entry;
}

void NearCacheSlots::BeginChange(std::int64_t id) {
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

void NearCacheSlots::EndChange(std::int64_t id) {
  Stripe& stripe = StripeOf(SlotOf(id));
  std::lock_guard lock(stripe.mu);
  --stripe.changing;
  ++stripe.sequence;
}

void NearCacheSlots::Forget(std::int64_t id) {
  BeginChange(id);
  EndChange(id);
}

void NearCacheSlots::SetTrusted(bool trusted) {
  trusted_.store(trusted, std::memory_order_release);
  for (std::size_t i = 0; i < kStripes; ++i) {
    Stripe& stripe = stripes_[i];
    std::lock_guard lock(stripe.mu);
    ++stripe.sequence;
    for (std::size_t j = i; j < slots_.size(); j += kStripes) slots_[j] = Slot{};
  }
}

StatusOr<CacheEntry> NearUserCache::Get(std::int64_t id) {
  CacheEntry entry;
  std::uint64_t sequence = 0;
  if (slots_.Lookup(id, entry, sequence)) return entry;
  StatusOr<CacheEntry> read = inner_.Get(id);
  if (read.ok()) slots_.Store(id, *read, sequence);
  return read;
}

StatusOr<std::vector<CacheEntry>> NearUserCache::MultiGet(std::span<const std::int64_t> ids) {
  std::vector<CacheEntry> out(ids.size());
  std::vector<std::int64_t> missing;
  std::vector<std::size_t> missing_at;
  std::vector<std::uint64_t> sequences;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::uint64_t sequence = 0;
    if (slots_.Lookup(ids[i], out[i], sequence)) continue;
    missing.push_back(ids[i]);
    missing_at.push_back(i);
    sequences.push_back(sequence);
  }
  if (missing.empty()) return out;
  StatusOr<std::vector<CacheEntry>> read = inner_.MultiGet(missing);
  if (!read.ok()) return read.status();
  for (std::size_t j = 0; j < missing.size(); ++j) {
    slots_.Store(missing[j], (*read)[j], sequences[j]);
    out[missing_at[j]] = std::move((*read)[j]);
  }
  return out;
}

StatusOr<bool> NearUserCache::PutIfNewer(const User& user) {
  slots_.BeginChange(user.id);
  StatusOr<bool> stored = inner_.PutIfNewer(user);
  slots_.EndChange(user.id);
  return stored;
}

StatusOr<std::size_t> NearUserCache::PutManyIfNewer(std::span<const User> users) {
  for (const User& user : users) slots_.BeginChange(user.id);
  StatusOr<std::size_t> refused = inner_.PutManyIfNewer(users);
  for (const User& user : users) slots_.EndChange(user.id);
  return refused;
}

StatusOr<bool> NearUserCache::PutAbsent(std::int64_t id) {
  slots_.BeginChange(id);
  StatusOr<bool> stored = inner_.PutAbsent(id);
  slots_.EndChange(id);
  return stored;
}

Status NearUserCache::PutTombstone(std::int64_t id, std::int64_t deleted_version) {
  slots_.BeginChange(id);
  Status status = inner_.PutTombstone(id, deleted_version);
  slots_.EndChange(id);
  return status;
}

Status NearUserCache::BeginWrite(std::int64_t id) {
  slots_.BeginChange(id);
  Status status = inner_.BeginWrite(id);
  slots_.EndChange(id);
  return status;
}

Status NearUserCache::EndWrite(std::int64_t id, const WrittenEntry& written) {
  slots_.BeginChange(id);
  Status status = inner_.EndWrite(id, written);
  slots_.EndChange(id);
  return status;
}

Status NearUserCache::SettleWrite(std::int64_t id, const WrittenEntry& written) {
  slots_.BeginChange(id);
  Status status = inner_.SettleWrite(id, written);
  slots_.EndChange(id);
  return status;
}

Status NearUserCache::Ping() { return inner_.Ping(); }

}  // namespace polycrud
