// SingleFlight coalesces concurrent calls for the same key: while one caller
// (the leader) runs the load, others asking for that key wait and share its
// result. N concurrent misses of one cold id therefore cost one store query.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace polycrud {

template <typename Key, typename Value>
class SingleFlight {
 public:
  // Runs `load` unless a call for `key` is already in flight, in which case it
  // waits for that call and returns a copy of its result. `shared` (optional)
  // is set to true for callers that did not run the load themselves.
  Value Do(const Key& key, const std::function<Value()>& load, bool* shared = nullptr) {
    std::shared_ptr<Call> call;
    bool leader = false;
    {
      std::lock_guard lock(mu_);
      auto [it, inserted] = calls_.try_emplace(key);
      if (inserted) {
        it->second = std::make_shared<Call>();
        leader = true;
      }
      call = it->second;
    }
    if (shared != nullptr) *shared = !leader;
    if (!leader) {
      std::unique_lock lock(call->mu);
      call->cv.wait(lock, [&] { return call->result.has_value(); });
      return *call->result;
    }
    Value result = load();
    {
      std::lock_guard lock(mu_);
      calls_.erase(key);
    }
    {
      std::lock_guard lock(call->mu);
      call->result.emplace(result);
    }
    call->cv.notify_all();
    return result;
  }

 private:
  struct Call {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Value> result;
  };

  std::mutex mu_;
  std::unordered_map<Key, std::shared_ptr<Call>> calls_;
};

}  // namespace polycrud
