// TokenRateLimiter: per-token rate limits (docs/operations.md, "Rate
// limits"). Each token has a bucket of `burst` requests that refills at
// `per_second`; a request finding its bucket empty is refused with the time
// until the next one is allowed. UserService asks it for every operation but
// Ping, after the token was verified, so only configured tokens have
// buckets. Thread-safe (one lock, held for a few arithmetic operations).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/ports.h"

namespace polycrud {

class TokenRateLimiter {
 public:
  // `per_second` > 0 and `burst` >= 1; `clock` (MonotonicMs) must outlive it.
  TokenRateLimiter(double per_second, double burst, const Clock& clock)
      : per_second_(per_second), burst_(burst), clock_(clock) {}

  // 0 if the request of `token_id` may go now (it is counted), else the
  // milliseconds until it may (nothing counted).
  std::int64_t Take(std::string_view token_id);

  double per_second() const { return per_second_; }
  double burst() const { return burst_; }

 private:
  struct Bucket {
    double tokens = 0;
    std::int64_t updated_ms = 0;
  };

  const double per_second_;
  const double burst_;
  const Clock& clock_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace polycrud
