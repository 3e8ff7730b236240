// How polycrud-bench picks user ids: uniformly, or Zipf-distributed over
// ranks 1..n with a fixed permutation from ranks to ids.
#pragma once

#include <cstdint>
#include <random>

namespace polycrud::bench {

// Samples ranks 1..n with P(k) proportional to 1 / k^s (s > 0) in O(1)
// expected time and O(1) memory, by rejection-inversion (W. Hörmann and
// G. Derflinger, "Rejection-inversion to generate variates from monotone
// discrete distributions", 1996; the method of Apache Commons RNG's
// RejectionInversionZipfSampler). Immutable after construction, so one
// sampler may serve several threads, each with its own generator.
class ZipfSampler {
 public:
  // Requires n >= 1 and s > 0.
  ZipfSampler(std::int64_t n, double s);

  template <typename Rng>
  std::int64_t operator()(Rng& rng) const {
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    return Sample([&] { return uniform(rng); });
  }

  std::int64_t n() const { return n_; }
  double s() const { return s_; }

 private:
  // One sample; `uniform` returns doubles uniform in [0, 1).
  template <typename Uniform>
  std::int64_t Sample(Uniform&& uniform) const {
    while (true) {
      const double u = h_integral_n_ + uniform() * (h_integral_x1_ - h_integral_n_);
      const double x = HIntegralInverse(u);
      auto k = static_cast<std::int64_t>(x + 0.5);
      if (k < 1) {
        k = 1;
      } else if (k > n_) {
        k = n_;
      }
      const auto kd = static_cast<double>(k);
      if (kd - x <= threshold_ || u >= HIntegral(kd + 0.5) - H(kd)) return k;
    }
  }

  double H(double x) const;
  double HIntegral(double x) const;
  double HIntegralInverse(double x) const;

  std::int64_t n_;
  double s_;
  double h_integral_x1_;
  double h_integral_n_;
  double threshold_;
};

// Maps Zipf ranks 1..n to the ids min_id..min_id+n-1 by a fixed bijection,
// rank -> min_id + ((rank - 1) * m + n / 3) mod n with m coprime to n, so
// the hot ids are spread over the whole range instead of being the oldest
// (smallest) ones, and are the same in every run.
class RankPermutation {
 public:
  RankPermutation(std::int64_t min_id, std::int64_t n);
  std::int64_t IdOfRank(std::int64_t rank) const;

 private:
  std::int64_t min_id_;
  std::int64_t n_;
  std::int64_t multiplier_;
  std::int64_t offset_;
};

// The key distribution of a run: ids from [min_id, max_id], uniform or Zipf.
class KeyChooser {
 public:
  static KeyChooser Uniform(std::int64_t min_id, std::int64_t max_id);
  static KeyChooser Zipf(std::int64_t min_id, std::int64_t max_id, double s);

  template <typename Rng>
  std::int64_t operator()(Rng& rng) const {
    if (!zipf_) return std::uniform_int_distribution<std::int64_t>(min_id_, max_id_)(rng);
    return permutation_.IdOfRank(sampler_(rng));
  }

 private:
  KeyChooser(std::int64_t min_id, std::int64_t max_id, bool zipf, double s);

  std::int64_t min_id_;
  std::int64_t max_id_;
  bool zipf_;
  ZipfSampler sampler_;
  RankPermutation permutation_;
};

}  // namespace polycrud::bench
