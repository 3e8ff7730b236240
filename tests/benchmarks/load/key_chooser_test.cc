#include "benchmarks/load/key_chooser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

namespace polycrud::bench {
namespace {

// Generalised harmonic number H(n, s) = sum over k of 1 / k^s.
double Harmonic(std::int64_t n, double s) {
  double sum = 0;
  for (std::int64_t k = n; k >= 1; --k) sum += std::pow(static_cast<double>(k), -s);
  return sum;
}

void ExpectTopRanksMatch(std::int64_t n, double s, int samples, int top, double tolerance) {
  ZipfSampler sampler(n, s);
  std::mt19937_64 rng(42);
  std::vector<std::int64_t> counts(static_cast<std::size_t>(top) + 1, 0);
  for (int i = 0; i < samples; ++i) {
    const std::int64_t k = sampler(rng);
    ASSERT_GE(k, 1);
    ASSERT_LE(k, n);
    if (k <= top) ++counts[static_cast<std::size_t>(k)];
  }
  const double h = Harmonic(n, s);
  for (int k = 1; k <= top; ++k) {
    const double expected = samples * std::pow(k, -s) / h;
    EXPECT_NEAR(static_cast<double>(counts[static_cast<std::size_t>(k)]), expected,
                expected * tolerance)
        << "rank " << k << " of n=" << n << " s=" << s;
  }
}

TEST(ZipfSamplerTest, TopRanksOfEightMillionMatchTheDistribution) {
  // s = 0.99 over 8M ranks: rank 1 has p = 0.0613, rank 10 p = 0.0063.
  ExpectTopRanksMatch(8'000'000, 0.99, 2'000'000, 10, 0.03);
}

TEST(ZipfSamplerTest, ExponentOneAndSteeperExponentsMatch) {
  ExpectTopRanksMatch(1'000'000, 1.0, 1'000'000, 10, 0.03);
  ExpectTopRanksMatch(1000, 1.5, 1'000'000, 20, 0.03);
  ExpectTopRanksMatch(100'000, 0.5, 2'000'000, 5, 0.05);
}

TEST(ZipfSamplerTest, SmallRangeMatchesEveryRank) {
  // n = 10, s = 1.2: every rank's frequency, by chi-square (9 dof; 27.9 is p = 0.001).
  ZipfSampler sampler(10, 1.2);
  std::mt19937_64 rng(5);
  std::vector<std::int64_t> counts(11, 0);
  constexpr int kSamples = 500'000;
  for (int i = 0; i < kSamples; ++i) ++counts[static_cast<std::size_t>(sampler(rng))];
  const double h = Harmonic(10, 1.2);
  double chi2 = 0;
  for (int k = 1; k <= 10; ++k) {
    const double expected = kSamples * std::pow(k, -1.2) / h;
    const double d = static_cast<double>(counts[static_cast<std::size_t>(k)]) - expected;
    chi2 += d * d / expected;
  }
  EXPECT_LT(chi2, 27.9);
  ZipfSampler one(1, 0.99);
  EXPECT_EQ(one(rng), 1);
}

TEST(ZipfSamplerTest, RejectsBadParameters) {
  EXPECT_THROW(ZipfSampler(0, 1.0), std::invalid_argument);
  EXPECT_THROW(ZipfSampler(10, 0.0), std::invalid_argument);
  EXPECT_THROW(ZipfSampler(10, -1.0), std::invalid_argument);
}

TEST(RankPermutationTest, IsABijectionOntoTheIdRange) {
  for (const std::int64_t n : {1, 2, 3, 10, 97, 1000, 4096}) {
    RankPermutation p(5, n);
    std::set<std::int64_t> ids;
    for (std::int64_t rank = 1; rank <= n; ++rank) {
      const std::int64_t id = p.IdOfRank(rank);
      ASSERT_GE(id, 5);
      ASSERT_LT(id, 5 + n);
      ids.insert(id);
    }
    EXPECT_EQ(static_cast<std::int64_t>(ids.size()), n);
  }
  // Large ranges do not overflow, and hot ranks are not the smallest ids.
  RankPermutation big(1, 8'000'000);
  EXPECT_GE(big.IdOfRank(8'000'000), 1);
  EXPECT_LE(big.IdOfRank(8'000'000), 8'000'000);
  EXPECT_NE(big.IdOfRank(1), 1);
  EXPECT_NE(big.IdOfRank(2), big.IdOfRank(1) + 1);
}

TEST(KeyChooserTest, UniformAndZipfStayInRange) {
  std::mt19937_64 rng(9);
  const KeyChooser uniform = KeyChooser::Uniform(10, 20);
  std::map<std::int64_t, int> seen;
  for (int i = 0; i < 10'000; ++i) {
    const std::int64_t id = uniform(rng);
    ASSERT_GE(id, 10);
    ASSERT_LE(id, 20);
    ++seen[id];
  }
  EXPECT_EQ(seen.size(), 11u);
  const KeyChooser zipf = KeyChooser::Zipf(1, 1000, 0.99);
  std::map<std::int64_t, int> hot;
  for (int i = 0; i < 100'000; ++i) {
    const std::int64_t id = zipf(rng);
    ASSERT_GE(id, 1);
    ASSERT_LE(id, 1000);
    ++hot[id];
  }
  // The hottest id gets about 1 / H(1000, 0.99) = 13% of the draws.
  int max_count = 0;
  for (const auto& [id, count] : hot) max_count = std::max(max_count, count);
  EXPECT_NEAR(max_count / 100'000.0, 1 / Harmonic(1000, 0.99), 0.01);
  EXPECT_THROW(KeyChooser::Uniform(5, 4), std::invalid_argument);
}

}  // namespace
}  // namespace polycrud::bench
