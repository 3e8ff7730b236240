#include "core/user_service.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

#include "core/validation.h"

namespace polycrud {

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
      own_health_(std::make_unique<CacheHealth>(
          clock, options_.cache_failure_threshold, options_.cache_open_ms,
          options_.fallback_read_concurrency, options_.events)),
      own_repairer_(std::make_unique<CacheRepairer>(
          store, cache, *own_health_,
          CacheRepairerOptions{.interval_ms = options_.repair_interval_ms})),
      health_(*own_health_),
      repairer_(*own_repairer_),
      cache_aside_(store, cache, health_, repairer_, options_.retry_after_ms) {}

UserService::UserService(UserStore& store, UserCache& cache, CacheHealth& health,
                         CacheRepairer& repairer, const TokenVerifier& tokens, const Clock& clock,
                         UserServiceOptions options)
    : store_(store),
      cache_(cache),
      tokens_(tokens),
      clock_(clock),
      options_(std::move(options)),
      health_(health),
      repairer_(repairer),
      cache_aside_(store, cache, health_, repairer_, options_.retry_after_ms) {}

std::string UserService::Ping() const {
  return options_.server_name + " " + options_.server_version;
}

Status UserService::Unavailable(std::string message) const {
  return Status::Unavailable(std::move(message), options_.retry_after_ms);
}

Status UserService::Admit(const Caller& caller, Operation operation) const {
  switch (operation) {
    case Operation::kPing:
      return Status::Ok();
    case Operation::kCreateUser:
    case Operation::kUpdateUser:
    case Operation::kDeleteUser:
      return Authorize(caller.token, Role::kAdmin);
    case Operation::kGetUser:
    case Operation::kBatchGetUsers:
    case Operation::kListUsers:
    case Operation::kSearchUsers:
      return Authorize(caller.token, Role::kReader);
  }
  return Status::Internal("unknown operation");
}

Status UserService::Enter(const Caller& caller, Operation operation) const {
  Status admitted = Admit(caller, operation);
  if (!admitted.ok() || operation == Operation::kPing || options_.rate_limiter == nullptr) {
    return admitted;
  }
  const std::string token_id = tokens_.TokenId(caller.token);
  if (const std::int64_t wait_ms = options_.rate_limiter->Take(token_id); wait_ms > 0) {
    char rate[32];
    std::snprintf(rate, sizeof rate, "%g", options_.rate_limiter->per_second());
    return Status::ResourceExhausted(
        "rate limit of token " + token_id + " reached (" + rate + " requests/s)", wait_ms);
  }
  return Status::Ok();
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

void UserService::Audit(const Caller& caller, Operation operation, std::int64_t user_id,
                        const Status& result) const {
  if (options_.audit == nullptr) return;
  const std::string token_id = tokens_.TokenId(caller.token);
  options_.audit->Record(AuditRecord{.token_id = token_id,
                                     .operation = operation,
                                     .user_id = user_id,
                                     .result = result.code(),
                                     .request_id = caller.request_id});
}

StatusOr<User> UserService::CreateUser(const Caller& caller, const UserDraft& draft) {
  StatusOr<User> user = Create(caller, draft);
  Audit(caller, Operation::kCreateUser, user.ok() ? user->id : 0, user.status());
  return user;
}

StatusOr<User> UserService::Create(const Caller& caller, const UserDraft& draft) {
  if (Status s = Enter(caller, Operation::kCreateUser); !s.ok()) return s;
  if (Status s = ValidateDraft(draft); !s.ok()) return s;
  StatusOr<User> user = store_.Insert(draft, clock_.NowMs());
  if (!user.ok()) return user;
  cache_aside_.AfterCreate(*user, caller.request_id);
  if (options_.after_write) options_.after_write();
  return user;
}

StatusOr<User> UserService::GetUser(const Caller& caller, std::int64_t id) {
  if (Status s = Enter(caller, Operation::kGetUser); !s.ok()) return s;
  if (Status s = ValidateId(id); !s.ok()) return s;
  return cache_aside_.Read(id, caller.request_id);
}

StatusOr<std::vector<User>> UserService::BatchGetUsers(const Caller& caller,
                                                       std::span<const std::int64_t> ids) {
  if (Status s = Enter(caller, Operation::kBatchGetUsers); !s.ok()) return s;
  if (Status s = ValidateBatchIds(ids); !s.ok()) return s;
  return cache_aside_.ReadMany(ids, caller.request_id);
}

StatusOr<User> UserService::UpdateUser(const Caller& caller, std::int64_t id,
                                       const UserPatch& patch) {
  StatusOr<User> user = Update(caller, id, patch);
  Audit(caller, Operation::kUpdateUser, id, user.status());
  return user;
}

StatusOr<User> UserService::Update(const Caller& caller, std::int64_t id, const UserPatch& patch) {
  if (Status s = Enter(caller, Operation::kUpdateUser); !s.ok()) return s;
  if (Status s = ValidateId(id); !s.ok()) return s;
  if (Status s = ValidatePatch(patch); !s.ok()) return s;
  if (Status s = MarkBeforeWrite(id, caller.request_id); !s.ok()) return s;
  StatusOr<User> user = store_.Update(id, patch, clock_.NowMs());
  if (!user.ok()) {
    cache_aside_.AfterWriteError(id, user.status(), caller.request_id);
    return user;
  }
  cache_aside_.AfterWrite(id, &*user, 0, caller.request_id);
  if (options_.after_write) options_.after_write();
  return user;
}

Status UserService::DeleteUser(const Caller& caller, std::int64_t id) {
  Status status = Delete(caller, id);
  Audit(caller, Operation::kDeleteUser, id, status);
  return status;
}

Status UserService::Delete(const Caller& caller, std::int64_t id) {
  if (Status s = Enter(caller, Operation::kDeleteUser); !s.ok()) return s;
  if (Status s = ValidateId(id); !s.ok()) return s;
  if (Status s = MarkBeforeWrite(id, caller.request_id); !s.ok()) return s;
  StatusOr<std::int64_t> deleted_version = store_.Delete(id);
  if (!deleted_version.ok()) {
    cache_aside_.AfterWriteError(id, deleted_version.status(), caller.request_id);
    return deleted_version.status();
  }
  cache_aside_.AfterWrite(id, nullptr, *deleted_version, caller.request_id);
  if (options_.after_write) options_.after_write();
  return Status::Ok();
}

Status UserService::MarkBeforeWrite(std::int64_t id, std::string_view request_id) {
  if (cache_aside_.BeforeWrite(id, request_id) || !options_.shared_cache) return Status::Ok();
  return Unavailable("the cache cannot be told of this write; nothing was written");
}

StatusOr<UserPage> UserService::ListUsers(const Caller& caller, std::int64_t after_id,
                                          std::int32_t limit) {
  if (Status s = Enter(caller, Operation::kListUsers); !s.ok()) return s;
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

StatusOr<std::vector<User>> UserService::SearchUsers(const Caller& caller, std::string_view prefix,
                                                     std::int32_t limit) {
  if (Status s = Enter(caller, Operation::kSearchUsers); !s.ok()) return s;
  if (Status s = ValidateSearchArgs(prefix, limit); !s.ok()) return s;
  return store_.SearchByPrefix(prefix, limit == 0 ? kDefaultSearchLimit : limit);
}

bool UserService::StoreReachable() { return store_.Ping().ok(); }

bool UserService::CacheReachable() { return cache_.Ping().ok(); }

}  // namespace polycrud
