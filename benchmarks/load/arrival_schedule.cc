#include "benchmarks/load/arrival_schedule.h"

#include <cmath>
#include <stdexcept>

namespace polycrud::bench {

ArrivalSchedule::ArrivalSchedule(double rate, Arrivals arrivals, std::uint64_t seed)
    : rate_(rate), arrivals_(arrivals), rng_(seed) {
  if (!(rate > 0)) throw std::invalid_argument("the arrival rate must be positive");
}

std::int64_t ArrivalSchedule::NextOffsetNs() {
  if (pending_offset_ns_ < 0) {
    if (arrivals_ == Arrivals::kUniform) {
      // i / rate from the index, so rounding errors never accumulate.
      pending_offset_ns_ = std::llround(static_cast<double>(next_) * 1e9 / rate_);
    } else {
      // The first arrival is at t0; each further one an Exp(rate) gap later.
      if (next_ > 0) poisson_time_s_ += std::exponential_distribution<double>(rate_)(rng_);
      pending_offset_ns_ = std::llround(poisson_time_s_ * 1e9);
    }
  }
  return pending_offset_ns_;
}

bool ArrivalSchedule::Take(std::int64_t limit_ns, std::int64_t* index, std::int64_t* offset_ns) {
  std::lock_guard lock(mu_);
  const std::int64_t offset = NextOffsetNs();
  if (offset >= limit_ns) return false;
  *index = next_++;
  *offset_ns = offset;
  pending_offset_ns_ = -1;
  return true;
}

std::int64_t ArrivalSchedule::taken() const {
  std::lock_guard lock(mu_);
  return next_;
}

}  // namespace polycrud::bench
