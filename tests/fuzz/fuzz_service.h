// The core every fuzz target drives: a UserService over the in-memory fakes
// of its ports (no network, no database), the two tokens it accepts, and a
// few users, so that reads find someone; and Fresh(), which keeps a target's
// state and renews it now and then.
#pragma once

#include <cstdlib>
#include <memory>
#include <string_view>

#include "core/metrics.h"
#include "core/sha256_token_verifier.h"
#include "core/testing/fake_clock.h"
#include "core/testing/memory_user_cache.h"
#include "core/testing/memory_user_store.h"
#include "core/user_service.h"

namespace polycrud::fuzz {

// The tokens the seed inputs carry.
inline constexpr std::string_view kAdminToken = "fuzz-admin-token";
inline constexpr std::string_view kReaderToken = "fuzz-reader-token";

struct FuzzService {
  FuzzService() : tokens(MakeTokens()), service(store, cache, tokens, clock, UserServiceOptions{}) {
    for (const char* name : {"ada", "bob", "cyd"}) {
      const std::string n = name;
      if (!service
               .CreateUser(
                   Caller(kAdminToken, "seed"),
                   UserDraft{.username = n, .email = n + "@example.com", .full_name = "Seed " + n})
               .ok()) {
        std::abort();
      }
    }
  }

  static Sha256TokenVerifier MakeTokens() {
    StatusOr<Sha256TokenVerifier> verifier = Sha256TokenVerifier::Create(
        {Sha256TokenVerifier::HashHex(kAdminToken)}, {Sha256TokenVerifier::HashHex(kReaderToken)});
    if (!verifier.ok()) std::abort();
    return std::move(verifier).value();
  }

  testing::MemoryUserStore store;
  testing::MemoryUserCache cache;
  testing::FakeClock clock;
  Sha256TokenVerifier tokens;
  Metrics metrics;
  UserService service;
};

// A target's state (a FuzzService and the face over it), built anew every
// 20,000 inputs so that the users inputs create do not pile up over a long
// run. Targets run one input at a time.
template <typename State>
State& Fresh() {
  static State* state = nullptr;  // never destroyed at exit: no exit-order races
  static int inputs = 0;
  if (state == nullptr || ++inputs % 20'000 == 0) {
    delete state;
    state = new State();
  }
  return *state;
}

}  // namespace polycrud::fuzz
