// ArrivalSchedule: the intended send times of an open-loop run. Arrivals
// come at exact intervals of 1/rate (deterministic) or with exponentially
// distributed gaps of mean 1/rate (Poisson, seeded). Request i is due at
// t0 + offset(i); whichever connection is free takes the next one, and its
// latency is measured from that intended time, so queueing while the server
// falls behind is counted (no coordinated omission).
#pragma once

#include <cstdint>
#include <mutex>
#include <random>

namespace polycrud::bench {

enum class Arrivals { kUniform, kPoisson };

class ArrivalSchedule {
 public:
  // Requires rate > 0 (arrivals per second).
  ArrivalSchedule(double rate, Arrivals arrivals, std::uint64_t seed);

  // Takes the next arrival if it is due before `limit_ns` (offset from t0):
  // stores its index and offset in nanoseconds and returns true; otherwise
  // takes nothing and returns false. Thread-safe.
  bool Take(std::int64_t limit_ns, std::int64_t* index, std::int64_t* offset_ns);

  // Arrivals taken so far. Thread-safe.
  std::int64_t taken() const;

  double rate() const { return rate_; }

 private:
  // The offset of arrival next_, computed once per arrival.
  std::int64_t NextOffsetNs();

  const double rate_;
  const Arrivals arrivals_;
  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  std::int64_t next_ = 0;
  double poisson_time_s_ = 0;
  std::int64_t pending_offset_ns_ = -1;  // offset of arrival next_, once computed
};

}  // namespace polycrud::bench
