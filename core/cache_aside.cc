#include "core/cache_aside.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace polycrud {
namespace {

Status NotFound(std::int64_t id) {
  return Status::NotFound("user " + std::to_string(id) + " not found");
}

}  // namespace

CacheAside::CacheAside(UserStore& store, UserCache& cache, CacheHealth& health,
                       CacheRepairer& repairer, std::int64_t retry_after_ms)
    : store_(store),
      cache_(cache),
      health_(health),
      repairer_(repairer),
      retry_after_ms_(retry_after_ms) {}

Status CacheAside::Overloaded(std::string_view request_id) const {
  CacheHealth::Count(health_.stats().overload_rejections);
  health_.Report(Event::kOverloaded, request_id,
                 "a read was refused: the cache is unusable and the fallback limit is reached");
  return Status::ResourceExhausted("overloaded: the cache is unavailable, retry later",
                                   retry_after_ms_);
}

StatusOr<User> CacheAside::Read(std::int64_t id, std::string_view request_id) {
  CacheStats& stats = health_.stats();
  if (repairer_.IsPending(id) || !health_.Allow()) return ReadBypassingCache(id, request_id);
  StatusOr<CacheEntry> entry = cache_.Get(id);
  if (!entry.ok()) {
    health_.Failed(entry.status(), request_id);
    return ReadBypassingCache(id, request_id);
  }
  health_.Succeeded();
  switch (entry->kind) {
    case CacheEntry::Kind::kUser:
      CacheHealth::Count(stats.hits);
      return std::move(entry->user);
    case CacheEntry::Kind::kAbsent:
      CacheHealth::Count(stats.negative_hits);
      return NotFound(id);
    case CacheEntry::Kind::kWriting:
      return ReadDuringWrite(id);
    case CacheEntry::Kind::kMiss:
      break;
  }
  CacheHealth::Count(stats.misses);
  bool shared = false;
  LoadResult loaded = flights_.Do(
      id, [&] { return LoadAndFill(id, request_id); }, &shared);
  if (shared) CacheHealth::Count(stats.coalesced_misses);
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value()) return NotFound(id);
  return **loaded;
}

CacheAside::LoadResult CacheAside::LoadAndFill(std::int64_t id, std::string_view request_id) {
  LoadResult row = store_.FindById(id);
  if (!row.ok()) return row;
  StatusOr<bool> stored = row->has_value() ? cache_.PutIfNewer(**row) : cache_.PutAbsent(id);
  if (!stored.ok()) {
    health_.Failed(stored.status(), request_id);
  } else if (*stored) {
    CacheHealth::Count(health_.stats().fills);
  } else if (row->has_value()) {
    // A newer version or tombstone is already there: ours lost the race.
    CacheHealth::Count(health_.stats().refused_stale_fills);
  }
  return row;
}

StatusOr<User> CacheAside::ReadDuringWrite(std::int64_t id) {
  CacheHealth::Count(health_.stats().misses);
  CacheHealth::Count(health_.stats().intent_misses);
  LoadResult row = store_.FindById(id);
  if (!row.ok()) return row.status();
  if (!row->has_value()) return NotFound(id);
  return **row;
}

StatusOr<User> CacheAside::ReadBypassingCache(std::int64_t id, std::string_view request_id) {
  CacheHealth::Count(health_.stats().bypassed_reads);
  std::optional<ConcurrencyLimiter::Slot> slot = health_.fallback_limit().TryTake();
  if (!slot) return Overloaded(request_id);
  LoadResult row = store_.FindById(id);
  if (!row.ok()) return row.status();
  if (!row->has_value()) return NotFound(id);
  return **row;
}

StatusOr<std::vector<User>> CacheAside::ReadMany(std::span<const std::int64_t> ids,
                                                 std::string_view request_id) {
  CacheStats& stats = health_.stats();
  std::unordered_map<std::int64_t, User> found;
  std::vector<std::int64_t> to_load;
  std::unordered_set<std::int64_t> no_fill;
  bool cache_ok = health_.Allow();
  if (cache_ok) {
    // Pending ids must be noted before the cache is read, as Read does: a
    // repair finishing between the read and the check would make the value
    // read before it (stale) look current.
    std::vector<bool> pending(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) pending[i] = repairer_.IsPending(ids[i]);
    StatusOr<std::vector<CacheEntry>> entries = cache_.MultiGet(ids);
    if (!entries.ok()) {
      health_.Failed(entries.status(), request_id);
      cache_ok = false;
    } else {
      health_.Succeeded();
      for (std::size_t i = 0; i < ids.size(); ++i) {
        CacheEntry& e = (*entries)[i];
        if (pending[i] || repairer_.IsPending(ids[i])) e.kind = CacheEntry::Kind::kMiss;
        switch (e.kind) {
          case CacheEntry::Kind::kUser:
            CacheHealth::Count(stats.hits);
            found.emplace(ids[i], std::move(e.user));
            break;
          case CacheEntry::Kind::kAbsent:
            CacheHealth::Count(stats.negative_hits);
            break;
          case CacheEntry::Kind::kWriting:
            CacheHealth::Count(stats.intent_misses);
            no_fill.insert(ids[i]);  // being written: loaded, never filled
            [[fallthrough]];
          case CacheEntry::Kind::kMiss:
            CacheHealth::Count(stats.misses);
            to_load.push_back(ids[i]);
            break;
        }
      }
    }
  }
  std::optional<ConcurrencyLimiter::Slot> slot;
  if (!cache_ok) {
    to_load.assign(ids.begin(), ids.end());
    CacheHealth::Count(stats.bypassed_reads);
    slot = health_.fallback_limit().TryTake();
    if (!slot) return Overloaded(request_id);
  }

  std::sort(to_load.begin(), to_load.end());
  to_load.erase(std::unique(to_load.begin(), to_load.end()), to_load.end());
  if (!to_load.empty()) {
    StatusOr<std::vector<User>> rows = store_.FindByIds(to_load);
    slot.reset();
    if (!rows.ok()) return rows.status();
    if (cache_ok) {
      // Ids whose invalidation is pending must not be filled from here.
      std::vector<User> fills;
      fills.reserve(rows->size());
      for (const User& row : *rows) {
        if (!repairer_.IsPending(row.id) && !no_fill.contains(row.id)) fills.push_back(row);
      }
      if (!fills.empty()) {
        StatusOr<std::size_t> refused = cache_.PutManyIfNewer(fills);
        if (!refused.ok()) {
          health_.Failed(refused.status(), request_id);
        } else {
          CacheHealth::Count(stats.fills, fills.size() - *refused);
          CacheHealth::Count(stats.refused_stale_fills, *refused);
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

void CacheAside::MarkPending(std::int64_t id, std::int64_t deleted_version,
                             std::string_view request_id, std::string_view why) {
  repairer_.MarkPending(id, deleted_version);
  health_.Report(Event::kRepairPending, request_id,
                 "the cache entry of user " + std::to_string(id) + " may be stale (" +
                     std::string(why) + "): reads bypass it until it is repaired");
}

void CacheAside::AfterWriteError(std::int64_t id, const Status& error,
                                 std::string_view request_id) {
  if (error.code() == StatusCode::kUnavailable || error.code() == StatusCode::kInternal) {
    MarkPending(id, 0, request_id, "a write's outcome is unknown");
    return;
  }
  // A mark left behind (breaker open, call failed) expires by itself.
  if (health_.Allow()) health_.Record(cache_.EndWrite(id, WrittenEntry{}), request_id);
}

bool CacheAside::BeforeWrite(std::int64_t id, std::string_view request_id) {
  // Without a mark, AfterWrite still updates the entry or marks it pending.
  if (!health_.Allow()) return false;
  const Status marked = cache_.BeginWrite(id);
  health_.Record(marked, request_id);
  return marked.ok();
}

template <typename Update>
void CacheAside::UpdateAfterCommit(std::int64_t id, std::int64_t deleted_version,
                                   std::string_view request_id, Update update) {
  if (!health_.Allow()) {
    MarkPending(id, deleted_version, request_id, "the cache breaker is open");
  } else if (!health_.Record(update(), request_id)) {
    MarkPending(id, deleted_version, request_id, "its update failed");
  }
}

void CacheAside::AfterCreate(const User& user, std::string_view request_id) {
  // A fill: it also replaces a negative entry a reader left for the new id,
  // and leaves alone the write intent of a writer that raced the create.
  UpdateAfterCommit(user.id, 0, request_id, [&] { return cache_.PutIfNewer(user).status(); });
}

void CacheAside::AfterWrite(std::int64_t id, const User* user, std::int64_t deleted_version,
                            std::string_view request_id) {
  UpdateAfterCommit(id, deleted_version, request_id, [&] {
    WrittenEntry written;
    if (user != nullptr) {
      written.user = *user;
    } else {
      written.deleted_version = deleted_version;
    }
    return cache_.EndWrite(id, written);
  });
}

}  // namespace polycrud
