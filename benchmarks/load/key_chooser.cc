#include "benchmarks/load/key_chooser.h"

#include <cmath>
#include <numeric>
#include <stdexcept>

namespace polycrud::bench {
namespace {

__extension__ typedef unsigned __int128 Uint128;

// log1p(x) / x, continuous at 0.
double Helper1(double x) {
  return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

// expm1(x) / x, continuous at 0.
double Helper2(double x) {
  return std::abs(x) > 1e-8 ? std::expm1(x) / x
                            : 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

}  // namespace

ZipfSampler::ZipfSampler(std::int64_t n, double s) : n_(n), s_(s) {
  if (n < 1) throw std::invalid_argument("Zipf: n must be at least 1");
  if (!(s > 0)) throw std::invalid_argument("Zipf: the exponent must be positive");
  h_integral_x1_ = HIntegral(1.5) - 1.0;
  h_integral_n_ = HIntegral(static_cast<double>(n) + 0.5);
  threshold_ = 2.0 - HIntegralInverse(HIntegral(2.5) - H(2.0));
}

// h(x) = 1 / x^s, the unnormalised density.
double ZipfSampler::H(double x) const { return std::exp(-s_ * std::log(x)); }

// H(x) = integral of h from 1 to x: (x^(1-s) - 1) / (1 - s), or log x for s = 1.
double ZipfSampler::HIntegral(double x) const {
  const double log_x = std::log(x);
  return Helper2((1.0 - s_) * log_x) * log_x;
}

double ZipfSampler::HIntegralInverse(double x) const {
  double t = x * (1.0 - s_);
  if (t < -1.0) t = -1.0;  // rounding may take it just below the domain
  return std::exp(Helper1(t) * x);
}

RankPermutation::RankPermutation(std::int64_t min_id, std::int64_t n)
    : min_id_(min_id), n_(n), offset_(n / 3) {
  // A fixed odd constant (2^64 / golden ratio), moved to the next value
  // coprime to n.
  multiplier_ = static_cast<std::int64_t>(0x9E3779B97F4A7C15ULL % static_cast<std::uint64_t>(n));
  while (std::gcd(multiplier_, n_) != 1) multiplier_ = (multiplier_ + 1) % n_;
}

std::int64_t RankPermutation::IdOfRank(std::int64_t rank) const {
  const auto r = static_cast<Uint128>(rank - 1);
  const Uint128 pos = (r * static_cast<Uint128>(multiplier_) + static_cast<Uint128>(offset_)) %
                      static_cast<Uint128>(n_);
  return min_id_ + static_cast<std::int64_t>(pos);
}

KeyChooser KeyChooser::Uniform(std::int64_t min_id, std::int64_t max_id) {
  return KeyChooser(min_id, max_id, false, 1.0);
}

KeyChooser KeyChooser::Zipf(std::int64_t min_id, std::int64_t max_id, double s) {
  return KeyChooser(min_id, max_id, true, s);
}

KeyChooser::KeyChooser(std::int64_t min_id, std::int64_t max_id, bool zipf, double s)
    : min_id_(min_id),
      max_id_(max_id),
      zipf_(zipf),
      sampler_(max_id - min_id + 1, s),
      permutation_(min_id, max_id - min_id + 1) {
  if (max_id < min_id) throw std::invalid_argument("max-id is below min-id");
}

}  // namespace polycrud::bench
