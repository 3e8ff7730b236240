// SingleFlight coalesces concurrent calls for the same key: while one caller
// (the leader) runs the load, others asking for that key wait and share its
// result. N concurrent misses of one cold id therefore cost one store query.
// A follower waits through a CallDone (core/io_waiter.h), so on a fiber
// thread it parks its fiber and the leader, which may be a fiber of the same
// thread, can finish. A load that throws ends its flight all the same: the
// leader and every follower get the exception, and the next call for the
// key loads again. Thread-safe.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/io_waiter.h"

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
      CallDone done;
      {
        std::lock_guard lock(call->mu);
        if (call->error) std::rethrow_exception(call->error);
        if (call->result.has_value()) return *call->result;
        call->waiting.push_back(&done);
      }
      done.Wait();
      std::lock_guard lock(call->mu);
      if (call->error) std::rethrow_exception(call->error);
      return *call->result;
    }
    std::optional<Value> result;
    std::exception_ptr error;
    try {
      result.emplace(load());
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mu_);
      calls_.erase(key);
    }
    std::vector<CallDone*> waiting;
    {
      std::lock_guard lock(call->mu);
      if (error) {
        call->error = error;
      } else {
        call->result.emplace(*result);
      }
      waiting.swap(call->waiting);
    }
    for (CallDone* done : waiting) done->Notify();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
  }

 private:
  struct Call {
    std::mutex mu;
    std::optional<Value> result;     // guarded by mu
    std::exception_ptr error;        // guarded by mu: what the load threw
    std::vector<CallDone*> waiting;  // guarded by mu: followers not notified yet
  };

  std::mutex mu_;
  std::unordered_map<Key, std::shared_ptr<Call>> calls_;
};

}  // namespace polycrud
