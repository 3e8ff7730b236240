// OffloadingUserStore: a UserStore that runs each call of a fiber (a thread
// with a runtime::IoWaiter, such as the fiber Thrift model's) on a worker
// thread and parks the fiber until it is done, so a MySQL round trip blocks
// neither the fiber's thread nor the other connections it serves. Calls from
// any other thread go straight to the inner store. The workers start with
// the first offloaded call; more than `max_queued` calls waiting for one get
// kResourceExhausted. Thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>

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
  Status Ping() override;

 private:
  template <typename Result, typename Call>
  Result Run(Call call);

  UserStore& inner_;
  const int workers_;
  const std::size_t max_queued_;
  mutable std::mutex mu_;
  std::unique_ptr<WorkerPool> pool_;  // guarded by mu_ until set
  std::size_t offloaded_ = 0;         // guarded by mu_
};

}  // namespace polycrud::runtime
