// OffloadingUserStore: a UserStore for the fibers of the Thrift face's fiber
// threads. Each call runs on a worker thread while the calling fiber is
// parked, so a MySQL round trip blocks neither the fiber's thread nor the
// other connections it serves. polycrud-server gives it only to the
// UserService objects of the fiber threads; faces on plain threads call the
// store directly. Called off a fiber, a call still runs on a worker and the
// caller's thread waits for it. More than `max_queued` calls waiting for a
// worker get kResourceExhausted. Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>

#include "core/ports.h"
#include "runtime/worker_pool.h"

namespace polycrud::runtime {

class OffloadingUserStore final : public UserStore {
 public:
  // `inner` must outlive this object.
  OffloadingUserStore(UserStore& inner, int workers, std::size_t max_queued);

  // Calls offloaded so far (for tests and metrics).
  std::size_t offloaded() const;

  // UserStore:
  StatusOr<User> Insert(const UserDraft& draft, std::int64_t now_ms) override;
  StatusOr<std::optional<User>> FindById(std::int64_t id) override;
  StatusOr<std::vector<User>> FindByIds(std::span<const std::int64_t> ids) override;
  StatusOr<User> Update(std::int64_t id, const UserPatch& patch, std::int64_t now_ms) override;
  StatusOr<std::int64_t> Delete(std::int64_t id) override;
  StatusOr<std::vector<User>> ListAfter(std::int64_t after_id, std::int32_t limit) override;
  StatusOr<std::vector<User>> SearchByPrefix(std::string_view prefix, std::int32_t limit) override;
  Status Ping() override;

 private:
  template <typename Result, typename Call>
  Result Run(Call call);

  UserStore& inner_;
  WorkerPool pool_;
  std::atomic<std::size_t> offloaded_{0};
};

}  // namespace polycrud::runtime
