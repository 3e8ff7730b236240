// Shared pieces of the core unit tests: a UserService wired to the in-memory
// fakes of every port, the two bearer tokens it accepts, and small helpers for
// tests that coordinate threads (a one-shot notification and a bounded poll).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "core/sha256_token_verifier.h"
#include "core/testing/fake_clock.h"
#include "core/testing/memory_user_cache.h"
#include "core/testing/memory_user_store.h"
#include "core/user_service.h"

namespace polycrud {

// Readable failure messages for users (found by argument-dependent lookup).
inline void PrintTo(const User& u, std::ostream* os) {
  *os << "User{id=" << u.id << " v" << u.version << " " << u.username << " <" << u.email << "> \""
      << u.full_name << "\" created=" << u.created_at_ms << " updated=" << u.updated_at_ms << "}";
}

}  // namespace polycrud

namespace polycrud::testing {

inline constexpr std::string_view kAdminToken = "admin-token-7f3a9c";
inline constexpr std::string_view kReaderToken = "reader-token-52e1b8";

// A verifier that knows kAdminToken (admin) and kReaderToken (reader).
inline Sha256TokenVerifier MakeTokenVerifier() {
  StatusOr<Sha256TokenVerifier> verifier = Sha256TokenVerifier::Create(
      {Sha256TokenVerifier::HashHex(kAdminToken)}, {Sha256TokenVerifier::HashHex(kReaderToken)});
  if (!verifier.ok()) std::abort();
  return std::move(verifier).value();
}

// A valid draft, distinct for every `n`.
inline UserDraft MakeDraft(int n) {
  const std::string suffix = std::to_string(n);
  return UserDraft{.username = "user" + suffix,
                   .email = "user" + suffix + "@example.com",
                   .full_name = "User Number " + suffix};
}

// Polls `done` every millisecond until it holds (true) or `timeout` passes
// (false). Waiting on an observable condition, never on a fixed sleep.
template <typename Predicate>
bool WaitUntil(Predicate done, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A one-shot event: Notify() once, any number of threads wait for it.
class Notification {
 public:
  void Notify() {
    {
      std::lock_guard lock(mu_);
      notified_ = true;
    }
    cv_.notify_all();
  }
  // Waits at most 10 s; false on timeout, so a broken test fails, not hangs.
  bool Wait() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [this] { return notified_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

// Runs a function when the scope ends: lets a test that fails halfway release
// the threads it blocked, so that joining them does not wait for a timeout.
template <typename F>
class ScopeExit {
 public:
  explicit ScopeExit(F f) : f_(std::move(f)) {}
  ~ScopeExit() { f_(); }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  F f_;
};

// A UserService over fresh fakes; SetUp starts it with default options, a test
// that needs others calls Restart.
class UserServiceFixture : public ::testing::Test {
 protected:
  void SetUp() override { Restart(UserServiceOptions{}); }

  void TearDown() override {
    ClearHooks();
    service_.reset();
  }

  void Restart(UserServiceOptions options) {
    service_.reset();
    service_ = std::make_unique<UserService>(store_, cache_, tokens_, clock_, std::move(options));
  }

  void ClearHooks() {
    store_.SetFindByIdHook(nullptr);
    store_.SetFindByIdsHook(nullptr);
    cache_.SetGetHook(nullptr);
    cache_.SetMultiGetHook(nullptr);
    cache_.SetPutIfNewerHook(nullptr);
  }

  UserService& service() { return *service_; }
  const CacheStats& stats() const { return service_->cache_stats(); }

  // Creates MakeDraft(n) as admin; fails the test if that does not work.
  User Create(int n) {
    StatusOr<User> user = service_->CreateUser(kAdminToken, MakeDraft(n));
    EXPECT_TRUE(user.ok()) << user.status().ToString();
    return user.ok() ? *user : User{};
  }

  MemoryUserStore store_;
  MemoryUserCache cache_;
  FakeClock clock_;
  Sha256TokenVerifier tokens_ = MakeTokenVerifier();
  // Last, so it is destroyed (and its repair thread stopped) before the fakes.
  std::unique_ptr<UserService> service_;
};

}  // namespace polycrud::testing
