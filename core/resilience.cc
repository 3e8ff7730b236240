#include "core/resilience.h"

namespace polycrud {

bool CircuitBreaker::Allow() {
  std::lock_guard lock(mu_);
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kOpen:
      if (clock_.MonotonicMs() < open_until_ms_) return false;
      state_ = State::kHalfOpen;
      probe_in_flight_ = true;
      return true;
    case State::kHalfOpen:
      // Only the single probe is in flight; everyone else keeps bypassing.
      if (probe_in_flight_) return false;
      probe_in_flight_ = true;
      return true;
  }
  return false;
}

bool CircuitBreaker::RecordSuccess() {
  std::lock_guard lock(mu_);
  const bool closes = state_ != State::kClosed;
  state_ = State::kClosed;
  failures_ = 0;
  probe_in_flight_ = false;
  return closes;
}

bool CircuitBreaker::RecordFailure() {
  std::lock_guard lock(mu_);
  const bool opens = state_ != State::kOpen;
  probe_in_flight_ = false;
  if (state_ == State::kHalfOpen || ++failures_ >= failure_threshold_) {
    state_ = State::kOpen;
    open_until_ms_ = clock_.MonotonicMs() + open_ms_;
    failures_ = 0;
    return opens;
  }
  return false;
}

CircuitBreaker::State CircuitBreaker::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

}  // namespace polycrud
