#include "core/user_service.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <unordered_set>
#include <utility>

#include "core/validation.h"

namespace polycrud {
namespace {

// Above this many pending repairs, new ones are dropped (and counted): the
// entries then heal by TTL. Bounds memory during a long cache outage.
constexpr std::size_t kMaxPending = 1'000'000;
constexpr std::size_t kRepairBatch = 256;

}  // namespace

std::int64_t SystemClock::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t SystemClock::MonotonicMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

UserService::UserService(UserStore& store, UserCache& cache, const TokenVerifier& tokens,
                         const Clock& clock, UserServiceOptions options)
    : store_(store),
      cache_(cache),
      tokens_(tokens),
      clock_(clock),
      options_(std::move(options)),
      breaker_(clock, options_.cache_failure_threshold, options_.cache_open_ms),
      fallback_limit_(options_.fallback_read_concurrency),
      repair_thread_([this] { RepairLoop(); }) {}

UserService::~UserService() {
  {
    std::lock_guard lock(repair_mu_);
    stop_repair_ = true;
  }
  repair_cv_.notify_all();
  repair_thread_.join();
}

std::string UserService::Ping() const {
  return options_.server_name + " " + options_.server_version;
}

Status UserService::Unavailable(std::string message) const {
  return Status::Unavailable(std::move(message), options_.retry_after_ms);
}

Status UserService::Authorize(std::string_view token, Role needed) const {
  if (shutting_down_.load(std::memory_order_relaxed)) return Unavailable("server is shutting down");
  StatusOr<Role> role = tokens_.Verify(token);
  if (!role.ok()) return role.status();
  if (needed == Role::kAdmin && *role != Role::kAdmin) {
    return Status::PermissionDenied("this operation needs the admin role");
  }
  return Status::Ok();
}

StatusOr<User> UserService::CreateUser(std::string_view token, const UserDraft& draft) {
  if (Status s = Authorize(token, Role::kAdmin); !s.ok()) return s;
  if (Status s = ValidateDraft(draft); !s.ok()) return s;
  StatusOr<User> user = store_.Insert(draft, clock_.NowMs());
  if (!user.ok()) return user;
  // Also replaces any negative entry a reader left for this id.
  AfterWrite(user->id, &*user, 0);
  return user;
}

StatusOr<User> UserService::GetUser(std::string_view token, std::int64_t id) {
  if (Status s = Authorize(token, Role::kReader); !s.ok()) return s;
  if (Status s = ValidateId(id); !s.ok()) return s;
  return ReadThroughCache(id);
}

StatusOr<User> UserService::ReadThroughCache(std::int64_t id) {
  if (!CacheUsableFor(id)) return ReadBypassingCache(id);
  StatusOr<CacheEntry> entry = cache_.Get(id);
  if (!entry.ok()) {
    CacheFailed(entry.status());
    return ReadBypassingCache(id);
  }
  breaker_.RecordSuccess();
  switch (entry->kind) {
    case CacheEntry::Kind::kUser:
      stats_.hits.fetch_add(1, std::memory_order_relaxed);
      return std::move(entry->user);
    case CacheEntry::Kind::kAbsent:
      stats_.negative_hits.fetch_add(1, std::memory_order_relaxed);
      return Status::NotFound("user " + std::to_string(id) + " not found");
    case CacheEntry::Kind::kMiss:
      break;
  }
  stats_.misses.fetch_add(1, std::memory_order_relaxed);
  bool shared = false;
  LoadResult loaded = flights_.Do(
      id, [&] { return LoadAndFill(id); }, &shared);
  if (shared) stats_.coalesced_misses.fetch_add(1, std::memory_order_relaxed);
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value()) return Status::NotFound("user " + std::to_string(id) + " not found");
  return **loaded;
}

UserService::LoadResult UserService::LoadAndFill(std::int64_t id) {
  LoadResult row = store_.FindById(id);
  if (!row.ok()) return row;
  StatusOr<bool> stored = row->has_value() ? cache_.PutIfNewer(**row) : cache_.PutAbsent(id);
  if (!stored.ok()) {
    CacheFailed(stored.status());
  } else if (*stored) {
    stats_.fills.fetch_add(1, std::memory_order_relaxed);
  } else if (row->has_value()) {
    // A newer version or tombstone is already there: ours lost the race.
    stats_.refused_stale_fills.fetch_add(1, std::memory_order_relaxed);
  }
  return row;
}

StatusOr<User> UserService::ReadBypassingCache(std::int64_t id) {
  stats_.bypassed_reads.fetch_add(1, std::memory_order_relaxed);
  if (!fallback_limit_.TryAcquire()) {
    stats_.overload_rejections.fetch_add(1, std::memory_order_relaxed);
    return Status::ResourceExhausted("overloaded: the cache is unavailable, retry later",
                                     options_.retry_after_ms);
  }
  LoadResult row = store_.FindById(id);
  fallback_limit_.Release();
  if (!row.ok()) return row.status();
  if (!row->has_value()) return Status::NotFound("user " + std::to_string(id) + " not found");
  return **row;
}

StatusOr<std::vector<User>> UserService::BatchGetUsers(std::string_view token,
                                                       std::span<const std::int64_t> ids) {
  if (Status s = Authorize(token, Role::kReader); !s.ok()) return s;
  if (Status s = ValidateBatchIds(ids); !s.ok()) return s;

  std::unordered_map<std::int64_t, User> found;
  std::vector<std::int64_t> to_load;
  bool cache_ok = breaker_.Allow();
  if (cache_ok) {
    // Pending ids must be noted before the cache is read, as GetUser does: a
    // repair finishing between the read and the check would make the value
    // read before it (stale) look current.
    std::vector<bool> pending(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) pending[i] = IsPending(ids[i]);
    StatusOr<std::vector<CacheEntry>> entries = cache_.MultiGet(ids);
    if (!entries.ok()) {
      CacheFailed(entries.status());
      cache_ok = false;
    } else {
      breaker_.RecordSuccess();
      for (std::size_t i = 0; i < ids.size(); ++i) {
        CacheEntry& e = (*entries)[i];
        if (pending[i] || IsPending(ids[i])) e.kind = CacheEntry::Kind::kMiss;
        switch (e.kind) {
          case CacheEntry::Kind::kUser:
            stats_.hits.fetch_add(1, std::memory_order_relaxed);
            found.emplace(ids[i], std::move(e.user));
            break;
          case CacheEntry::Kind::kAbsent:
            stats_.negative_hits.fetch_add(1, std::memory_order_relaxed);
            break;
          case CacheEntry::Kind::kMiss:
            stats_.misses.fetch_add(1, std::memory_order_relaxed);
            to_load.push_back(ids[i]);
            break;
        }
      }
    }
  }
  if (!cache_ok) {
    to_load.assign(ids.begin(), ids.end());
    stats_.bypassed_reads.fetch_add(1, std::memory_order_relaxed);
    if (!fallback_limit_.TryAcquire()) {
      stats_.overload_rejections.fetch_add(1, std::memory_order_relaxed);
      return Status::ResourceExhausted("overloaded: the cache is unavailable, retry later",
                                       options_.retry_after_ms);
    }
  }

  std::sort(to_load.begin(), to_load.end());
  to_load.erase(std::unique(to_load.begin(), to_load.end()), to_load.end());
  if (!to_load.empty()) {
    StatusOr<std::vector<User>> rows = store_.FindByIds(to_load);
    if (!cache_ok) fallback_limit_.Release();
    if (!rows.ok()) return rows.status();
    if (cache_ok) {
      // Ids whose invalidation is pending must not be filled from here.
      std::vector<User> fills;
      fills.reserve(rows->size());
      for (const User& row : *rows) {
        if (!IsPending(row.id)) fills.push_back(row);
      }
      if (!fills.empty()) {
        StatusOr<std::size_t> refused = cache_.PutManyIfNewer(fills);
        if (!refused.ok()) {
          CacheFailed(refused.status());
        } else {
          stats_.fills.fetch_add(fills.size() - *refused, std::memory_order_relaxed);
          stats_.refused_stale_fills.fetch_add(*refused, std::memory_order_relaxed);
        }
      }
    }
    for (User& row : *rows) {
      const std::int64_t id = row.id;
      found.emplace(id, std::move(row));
    }
  }

  std::vector<User> out;
  out.reserve(ids.size());
  for (const std::int64_t id : ids) {
    if (auto it = found.find(id); it != found.end()) out.push_back(it->second);
  }
  return out;
}

StatusOr<User> UserService::UpdateUser(std::string_view token, std::int64_t id,
                                       const UserPatch& patch) {
  if (Status s = Authorize(token, Role::kAdmin); !s.ok()) return s;
  if (Status s = ValidateId(id); !s.ok()) return s;
  if (Status s = ValidatePatch(patch); !s.ok()) return s;
  StatusOr<User> user = store_.Update(id, patch, clock_.NowMs());
  if (!user.ok()) return user;
  AfterWrite(id, &*user, 0);
  return user;
}

Status UserService::DeleteUser(std::string_view token, std::int64_t id) {
  if (Status s = Authorize(token, Role::kAdmin); !s.ok()) return s;
  if (Status s = ValidateId(id); !s.ok()) return s;
  StatusOr<std::int64_t> deleted_version = store_.Delete(id);
  if (!deleted_version.ok()) return deleted_version.status();
  AfterWrite(id, nullptr, *deleted_version);
  return Status::Ok();
}

StatusOr<UserPage> UserService::ListUsers(std::string_view token, std::int64_t after_id,
                                          std::int32_t limit) {
  if (Status s = Authorize(token, Role::kReader); !s.ok()) return s;
  if (Status s = ValidateListArgs(after_id, limit); !s.ok()) return s;
  const std::int32_t page_size = limit == 0 ? kDefaultPageLimit : limit;
  // One extra row tells whether a further page exists without a second query.
  StatusOr<std::vector<User>> rows = store_.ListAfter(after_id, page_size + 1);
  if (!rows.ok()) return rows.status();
  UserPage page;
  page.users = std::move(*rows);
  if (page.users.size() > static_cast<std::size_t>(page_size)) {
    page.users.resize(static_cast<std::size_t>(page_size));
    page.next_after_id = page.users.back().id;
  }
  return page;
}

bool UserService::StoreReachable() { return store_.Ping().ok(); }

bool UserService::CacheReachable() { return cache_.Ping().ok(); }

void UserService::AfterWrite(std::int64_t id, const User* user, std::int64_t deleted_version) {
  if (!breaker_.Allow()) {
    MarkPending(id, deleted_version);
    return;
  }
  Status status;
  if (user != nullptr) {
    StatusOr<bool> stored = cache_.PutIfNewer(*user);
    status = stored.status();
  } else {
    status = cache_.PutTombstone(id, deleted_version);
  }
  if (!status.ok()) {
    CacheFailed(status);
    MarkPending(id, deleted_version);
    return;
  }
  breaker_.RecordSuccess();
}

bool UserService::CacheUsableFor(std::int64_t id) {
  if (IsPending(id)) return false;
  return breaker_.Allow();
}

void UserService::CacheFailed(const Status& /*status*/) {
  stats_.errors.fetch_add(1, std::memory_order_relaxed);
  breaker_.RecordFailure();
}

void UserService::MarkPending(std::int64_t id, std::int64_t deleted_version) {
  std::lock_guard lock(pending_mu_);
  if (pending_.size() >= kMaxPending && !pending_.contains(id)) {
    stats_.repairs_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  PendingRepair& repair = pending_[id];
  repair.deleted_version = std::max(repair.deleted_version, deleted_version);
  repair.generation = ++pending_generation_;
  pending_count_.store(pending_.size(), std::memory_order_release);
}

bool UserService::IsPending(std::int64_t id) {
  if (pending_count_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard lock(pending_mu_);
  return pending_.contains(id);
}

void UserService::RepairLoop() {
  std::unique_lock lock(repair_mu_);
  while (!stop_repair_) {
    repair_cv_.wait_for(lock, std::chrono::milliseconds(options_.repair_interval_ms));
    if (stop_repair_) break;
    if (pending_count_.load(std::memory_order_acquire) == 0) continue;
    lock.unlock();
    RepairPending();
    lock.lock();
  }
}

void UserService::RepairPending() {
  std::vector<std::pair<std::int64_t, PendingRepair>> batch;
  {
    std::lock_guard lock(pending_mu_);
    for (const auto& entry : pending_) {
      batch.push_back(entry);
      if (batch.size() == kRepairBatch) break;
    }
  }
  for (const auto& [id, repair] : batch) {
    // Writing the row's current version (rather than deleting the key) makes
    // any stale fill still in flight lose against it.
    LoadResult row = store_.FindById(id);
    if (!row.ok()) return;  // the store is down: try again next round
    if (!breaker_.Allow()) return;
    Status status;
    if (row->has_value()) {
      status = cache_.PutIfNewer(**row).status();
    } else {
      const std::int64_t version = repair.deleted_version > 0
                                       ? repair.deleted_version
                                       : std::numeric_limits<std::int64_t>::max() - 1;
      status = cache_.PutTombstone(id, version);
    }
    if (!status.ok()) {
      CacheFailed(status);
      return;
    }
    breaker_.RecordSuccess();
    stats_.repairs.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(pending_mu_);
    // A write that failed again meanwhile bumped the generation: keep it.
    auto it = pending_.find(id);
    if (it != pending_.end() && it->second.generation == repair.generation) pending_.erase(it);
    pending_count_.store(pending_.size(), std::memory_order_release);
  }
}

}  // namespace polycrud
