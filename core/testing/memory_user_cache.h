// MemoryUserCache: the UserCache port in memory, for unit tests. It keeps the
// versioned semantics of RedisUserCache's Lua script and commands exactly:
//   PutIfNewer   refused if the key holds a user or a tombstone whose version
//                is the same or newer; a negative entry never blocks a row
//                (PutManyIfNewer applies the same rule to each user);
//   PutAbsent    writes a negative entry only if the key is empty (SET NX);
//   PutTombstone replaces whatever the key holds (plain SET);
//   BeginWrite / EndWrite / SettleWrite  write intents (write_intent.lua):
//                a slot with writers > 0 reads as a miss and refuses fills
//                and negative entries; its kind/user/version are the guard.
// Entries never expire here (TTLs are the driver's business); Evict() plays
// an expiry. Test controls: call counters, outage switches, and hooks that run
// inside Get, MultiGet and the conditional writes so a test can pause a fill
// or interleave other operations deterministically. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/ports.h"

namespace polycrud::testing {

class MemoryUserCache final : public UserCache {
 public:
  // What one key holds (RedisUserCache's U, N and D values, or nothing).
  struct Slot {
    enum class Kind : std::uint8_t { kEmpty, kUser, kNegative, kTombstone };
    Kind kind = Kind::kEmpty;
    User user;                 // for kUser
    std::int64_t version = 0;  // kUser: the user's version; kTombstone: the deleted version
    int writers = 0;           // > 0: a write intent of that many writers
  };

  // Hooks run on the caller's thread, outside the cache's lock. The read
  // hooks run after the keys were read and before the call returns: the
  // caller gets what was read, whatever the hook changes meanwhile. The
  // PutIfNewer hook runs before each conditional write (of PutIfNewer, or of
  // each user of PutManyIfNewer), so it can hold a fill back while other
  // operations go ahead.
  using GetHook = std::function<void(std::int64_t id)>;
  using MultiGetHook = std::function<void(std::span<const std::int64_t> ids)>;
  using PutIfNewerHook = std::function<void(const User& user)>;

  // UserCache:
  StatusOr<CacheEntry> Get(std::int64_t id) override {
    get_calls_.fetch_add(1);
    if (unavailable_.load()) return Outage();
    CacheEntry entry;
    GetHook hook;
    {
      std::lock_guard lock(mu_);
      entry = EntryOf(id);
      hook = get_hook_;
    }
    if (hook) hook(id);
    return entry;
  }

  StatusOr<std::vector<CacheEntry>> MultiGet(std::span<const std::int64_t> ids) override {
    multi_get_calls_.fetch_add(1);
    if (unavailable_.load()) return Outage();
    std::vector<CacheEntry> out;
    MultiGetHook hook;
    {
      std::lock_guard lock(mu_);
      out.reserve(ids.size());
      for (const std::int64_t id : ids) out.push_back(EntryOf(id));
      hook = multi_get_hook_;
    }
    if (hook) hook(ids);
    return out;
  }

  StatusOr<bool> PutIfNewer(const User& user) override {
    put_if_newer_calls_.fetch_add(1);
    RunPutIfNewerHook(user);
    if (Status refused = WriteRefusal(); !refused.ok()) return refused;
    return ApplyIfNewer(user);
  }

  // One call (RedisUserCache pipelines it into one round trip); each user is
  // still its own conditional write, with PutIfNewer's rule and hook.
  StatusOr<std::size_t> PutManyIfNewer(std::span<const User> users) override {
    put_many_if_newer_calls_.fetch_add(1);
    if (Status refused = WriteRefusal(); !refused.ok()) return refused;
    std::size_t refused = 0;
    for (const User& user : users) {
      RunPutIfNewerHook(user);
      if (!ApplyIfNewer(user)) ++refused;
    }
    return refused;
  }

  StatusOr<bool> PutAbsent(std::int64_t id) override {
    put_absent_calls_.fetch_add(1);
    if (Status refused = WriteRefusal(); !refused.ok()) return refused;
    std::lock_guard lock(mu_);
    Slot& slot = slots_[id];
    if (slot.kind != Slot::Kind::kEmpty || slot.writers > 0) return false;
    slot = Slot{.kind = Slot::Kind::kNegative};
    return true;
  }

  Status PutTombstone(std::int64_t id, std::int64_t deleted_version) override {
    put_tombstone_calls_.fetch_add(1);
    if (Status refused = WriteRefusal(); !refused.ok()) return refused;
    std::lock_guard lock(mu_);
    slots_[id] = Slot{.kind = Slot::Kind::kTombstone, .version = deleted_version};
    return Status::Ok();
  }

  Status BeginWrite(std::int64_t id) override {
    begin_write_calls_.fetch_add(1);
    if (Status refused = WriteRefusal(); !refused.ok()) return refused;
    std::lock_guard lock(mu_);
    Slot& slot = slots_[id];
    if (slot.kind == Slot::Kind::kNegative) slot = Slot{.writers = slot.writers};
    ++slot.writers;
    return Status::Ok();
  }

  Status EndWrite(std::int64_t id, const WrittenEntry& written) override {
    end_write_calls_.fetch_add(1);
    if (Status refused = WriteRefusal(); !refused.ok()) return refused;
    EndWrites(id, written, /*all=*/false);
    return Status::Ok();
  }

  Status SettleWrite(std::int64_t id, const WrittenEntry& written) override {
    settle_write_calls_.fetch_add(1);
    if (Status refused = WriteRefusal(); !refused.ok()) return refused;
    EndWrites(id, written, /*all=*/true);
    return Status::Ok();
  }

  Status Ping() override {
    ping_calls_.fetch_add(1);
    if (unavailable_.load()) return Outage();
    return Status::Ok();
  }

  // Test controls.

  // While set, every call fails with kUnavailable and changes nothing.
  void SetUnavailable(bool unavailable) { unavailable_.store(unavailable); }
  // While set, the three writes fail with kUnavailable; Get, MultiGet and
  // Ping still work (a cache that serves stale entries but takes no updates).
  void SetWritesUnavailable(bool unavailable) { writes_unavailable_.store(unavailable); }
  // While set, the three writes fail with kResourceExhausted, as a Redis
  // full under maxmemory (noeviction) refuses them; reads still work.
  void SetFull(bool full) { full_.store(full); }
  void SetGetHook(GetHook hook) {
    std::lock_guard lock(mu_);
    get_hook_ = std::move(hook);
  }
  void SetMultiGetHook(MultiGetHook hook) {
    std::lock_guard lock(mu_);
    multi_get_hook_ = std::move(hook);
  }
  void SetPutIfNewerHook(PutIfNewerHook hook) {
    std::lock_guard lock(mu_);
    put_if_newer_hook_ = std::move(hook);
  }

  // What the key of `id` holds; counts as no call.
  Slot Peek(std::int64_t id) const {
    std::lock_guard lock(mu_);
    auto it = slots_.find(id);
    return it == slots_.end() ? Slot{} : it->second;
  }
  // Empties one key, or all of them, as if their TTL had run out.
  void Evict(std::int64_t id) {
    std::lock_guard lock(mu_);
    slots_.erase(id);
  }
  void EvictAll() {
    std::lock_guard lock(mu_);
    slots_.clear();
  }

  // Calls received, failed ones included.
  int get_calls() const { return get_calls_.load(); }
  int multi_get_calls() const { return multi_get_calls_.load(); }
  int put_if_newer_calls() const { return put_if_newer_calls_.load(); }
  int put_many_if_newer_calls() const { return put_many_if_newer_calls_.load(); }
  int put_absent_calls() const { return put_absent_calls_.load(); }
  int put_tombstone_calls() const { return put_tombstone_calls_.load(); }
  int begin_write_calls() const { return begin_write_calls_.load(); }
  int end_write_calls() const { return end_write_calls_.load(); }
  int settle_write_calls() const { return settle_write_calls_.load(); }
  int ping_calls() const { return ping_calls_.load(); }
  // Every call to the cache but Ping.
  int data_calls() const {
    return get_calls() + multi_get_calls() + put_if_newer_calls() + put_many_if_newer_calls() +
           put_absent_calls() + put_tombstone_calls() + begin_write_calls() + end_write_calls() +
           settle_write_calls();
  }
  // Conditional writes (PutIfNewer, or one user of PutManyIfNewer) refused
  // because the key held the same or a newer version.
  int refused_puts() const { return refused_puts_.load(); }

 private:
  static Status Outage() { return Status::Unavailable("cache: injected outage"); }
  // Why a write is refused now; OK if it is not.
  Status WriteRefusal() const {
    if (unavailable_.load() || writes_unavailable_.load()) return Outage();
    if (full_.load()) return Status::ResourceExhausted("cache: full: injected");
    return Status::Ok();
  }

  void RunPutIfNewerHook(const User& user) {
    PutIfNewerHook hook;
    {
      std::lock_guard lock(mu_);
      hook = put_if_newer_hook_;
    }
    if (hook) hook(user);
  }

  // The rule of the fill script: refused if the key holds a user or a
  // tombstone of the same or a newer version; a negative entry never blocks.
  bool ApplyIfNewer(const User& user) {
    std::lock_guard lock(mu_);
    Slot& slot = slots_[user.id];
    const bool versioned = slot.kind == Slot::Kind::kUser || slot.kind == Slot::Kind::kTombstone;
    if (slot.writers > 0 || (versioned && slot.version >= user.version)) {
      refused_puts_.fetch_add(1);
      return false;
    }
    slot = Slot{.kind = Slot::Kind::kUser, .user = user, .version = user.version};
    return true;
  }

  // write_intent.lua's order: the higher version first, at the same version
  // a tombstone over the user; {-1, 0} for nothing.
  static std::pair<std::int64_t, int> Rank(const Slot& slot) {
    if (slot.kind == Slot::Kind::kUser) return {slot.version, 0};
    if (slot.kind == Slot::Kind::kTombstone) return {slot.version, 1};
    return {-1, 0};
  }

  // EndWrite (one writer) or SettleWrite (`all`), as write_intent.lua does.
  void EndWrites(std::int64_t id, const WrittenEntry& written, bool all) {
    std::lock_guard lock(mu_);
    Slot& slot = slots_[id];
    Slot guard = slot;
    guard.writers = 0;
    if (guard.kind == Slot::Kind::kNegative) guard = Slot{};
    Slot entry;
    if (written.user) {
      entry =
          Slot{.kind = Slot::Kind::kUser, .user = *written.user, .version = written.user->version};
    } else if (written.deleted_version > 0) {
      entry = Slot{.kind = Slot::Kind::kTombstone, .version = written.deleted_version};
    }
    if (Rank(entry) > Rank(guard)) guard = entry;
    const int left = !all && slot.writers > 1 ? slot.writers - 1 : 0;
    if (guard.kind == Slot::Kind::kEmpty && slot.writers == 0) return;  // keeps a negative entry
    guard.writers = left;
    slot = guard;
  }

  // Requires mu_.
  CacheEntry EntryOf(std::int64_t id) const {
    CacheEntry entry;
    auto it = slots_.find(id);
    if (it == slots_.end()) return entry;
    if (it->second.writers > 0) {
      entry.kind = CacheEntry::Kind::kWriting;
      return entry;
    }
    switch (it->second.kind) {
      case Slot::Kind::kEmpty:
        break;
      case Slot::Kind::kUser:
        entry.kind = CacheEntry::Kind::kUser;
        entry.user = it->second.user;
        break;
      case Slot::Kind::kNegative:
      case Slot::Kind::kTombstone:
        entry.kind = CacheEntry::Kind::kAbsent;
        break;
    }
    return entry;
  }

  mutable std::mutex mu_;
  std::unordered_map<std::int64_t, Slot> slots_;
  GetHook get_hook_;
  MultiGetHook multi_get_hook_;
  PutIfNewerHook put_if_newer_hook_;

  std::atomic<bool> unavailable_{false};
  std::atomic<bool> writes_unavailable_{false};
  std::atomic<bool> full_{false};
  std::atomic<int> get_calls_{0};
  std::atomic<int> multi_get_calls_{0};
  std::atomic<int> put_if_newer_calls_{0};
  std::atomic<int> put_many_if_newer_calls_{0};
  std::atomic<int> put_absent_calls_{0};
  std::atomic<int> put_tombstone_calls_{0};
  std::atomic<int> begin_write_calls_{0};
  std::atomic<int> end_write_calls_{0};
  std::atomic<int> settle_write_calls_{0};
  std::atomic<int> ping_calls_{0};
  std::atomic<int> refused_puts_{0};
};

}  // namespace polycrud::testing
