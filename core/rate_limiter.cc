#include "core/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace polycrud {

std::int64_t TokenRateLimiter::Take(std::string_view token_id) {
  const std::int64_t now = clock_.MonotonicMs();
  std::lock_guard lock(mu_);
  auto [it, fresh] = buckets_.try_emplace(std::string(token_id));
  Bucket& bucket = it->second;
  if (fresh) {
    bucket.tokens = burst_;
  } else {
    const double refill = static_cast<double>(now - bucket.updated_ms) * per_second_ / 1000.0;
    bucket.tokens = std::min(burst_, bucket.tokens + std::max(0.0, refill));
  }
  bucket.updated_ms = now;
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return 0;
  }
  return std::max<std::int64_t>(
      1, static_cast<std::int64_t>(std::ceil((1.0 - bucket.tokens) * 1000.0 / per_second_)));
}

}  // namespace polycrud
