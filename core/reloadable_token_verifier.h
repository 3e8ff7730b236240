// ReloadableTokenVerifier: a TokenVerifier whose tokens can be replaced
// while calls go on (the server's SIGHUP reload). Each call checks against
// the set in force when it began; a replacement takes effect for the calls
// that begin after it, on connections already open too.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/ports.h"

namespace polycrud {

class ReloadableTokenVerifier final : public TokenVerifier {
 public:
  explicit ReloadableTokenVerifier(std::shared_ptr<const TokenVerifier> tokens)
      : current_(std::move(tokens)) {}

  // The set for calls that begin from now on.
  void Replace(std::shared_ptr<const TokenVerifier> tokens) {
    current_.store(std::move(tokens), std::memory_order_release);
  }

  // TokenVerifier:
  StatusOr<Role> Verify(std::string_view token) const override {
    return current_.load(std::memory_order_acquire)->Verify(token);
  }
  std::string TokenId(std::string_view token) const override {
    return current_.load(std::memory_order_acquire)->TokenId(token);
  }

 private:
  std::atomic<std::shared_ptr<const TokenVerifier>> current_;
};

}  // namespace polycrud
