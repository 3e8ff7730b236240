#include "runtime/offloading_user_store.h"

#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "core/io_waiter.h"

namespace polycrud::runtime {

OffloadingUserStore::OffloadingUserStore(UserStore& inner, int workers, std::size_t max_queued)
    : inner_(inner), pool_(workers, max_queued) {}

std::size_t OffloadingUserStore::offloaded() const {
  return offloaded_.load(std::memory_order_relaxed);
}

template <typename Result, typename Call>
Result OffloadingUserStore::Run(Call call) {
  offloaded_.fetch_add(1, std::memory_order_relaxed);
  std::optional<Result> result;
  CallDone done;
  if (!pool_.Submit([&] {
        // The fiber must be woken whatever happens: an exception of the
        // store becomes an internal error of this call.
        try {
          result.emplace(call());
        } catch (const std::exception& e) {
          result.emplace(Status::Internal(std::string("store: ") + e.what()));
        } catch (...) {
          result.emplace(Status::Internal("store: unknown exception"));
        }
        done.Notify();
      })) {
    return Status::ResourceExhausted("store: too many calls waiting for the database", 100);
  }
  done.Wait();
  return std::move(*result);
}

StatusOr<User> OffloadingUserStore::Insert(const UserDraft& draft, std::int64_t now_ms) {
  return Run<StatusOr<User>>([&] { return inner_.Insert(draft, now_ms); });
}
StatusOr<std::optional<User>> OffloadingUserStore::FindById(std::int64_t id) {
  return Run<StatusOr<std::optional<User>>>([&] { return inner_.FindById(id); });
}
StatusOr<std::vector<User>> OffloadingUserStore::FindByIds(std::span<const std::int64_t> ids) {
  return Run<StatusOr<std::vector<User>>>([&] { return inner_.FindByIds(ids); });
}
StatusOr<User> OffloadingUserStore::Update(std::int64_t id, const UserPatch& patch,
                                           std::int64_t now_ms) {
  return Run<StatusOr<User>>([&] { return inner_.Update(id, patch, now_ms); });
}
StatusOr<std::int64_t> OffloadingUserStore::Delete(std::int64_t id) {
  return Run<StatusOr<std::int64_t>>([&] { return inner_.Delete(id); });
}
StatusOr<std::vector<User>> OffloadingUserStore::SearchByPrefix(std::string_view prefix,
                                                                std::int32_t limit) {
  return Run<StatusOr<std::vector<User>>>([&] { return inner_.SearchByPrefix(prefix, limit); });
}

StatusOr<std::vector<User>> OffloadingUserStore::ListAfter(std::int64_t after_id,
                                                           std::int32_t limit) {
  return Run<StatusOr<std::vector<User>>>([&] { return inner_.ListAfter(after_id, limit); });
}
Status OffloadingUserStore::Ping() {
  return Run<Status>([&] { return inner_.Ping(); });
}

}  // namespace polycrud::runtime
