#include "benchmarks/load/latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace polycrud::bench {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0);
  EXPECT_EQ(h.PercentileUs(0.5), 0);
  EXPECT_EQ(h.PercentileUs(1.0), 0);
  EXPECT_EQ(h.mean_ns(), 0);
  EXPECT_TRUE(h.NonEmptyBuckets().empty());
}

TEST(LatencyHistogramTest, BucketsAreExactBelow128UsAndAtMostOneIn128WideAbove) {
  for (std::int64_t us = 0; us < 128; ++us) {
    EXPECT_EQ(LatencyHistogram::BucketUpperBoundUs(LatencyHistogram::BucketIndex(us)), us);
  }
  std::size_t previous = LatencyHistogram::BucketIndex(127);
  for (std::int64_t us = 128; us <= LatencyHistogram::kMaxTrackableUs; us += 1 + us / 1000) {
    const std::size_t index = LatencyHistogram::BucketIndex(us);
    ASSERT_GE(index, previous);  // monotone
    previous = index;
    const std::int64_t upper = LatencyHistogram::BucketUpperBoundUs(index);
    ASSERT_GE(upper, us);
    ASSERT_LE(static_cast<double>(upper - us), static_cast<double>(us) / 128.0) << us;
    // The next value after the upper bound is in the next bucket (but for
    // the last one, which takes everything beyond the range).
    if (upper < LatencyHistogram::kMaxTrackableUs) {
      ASSERT_EQ(LatencyHistogram::BucketIndex(upper + 1), index + 1) << us;
    }
  }
}

TEST(LatencyHistogramTest, UniformDistributionPercentilesWithinOnePercent) {
  // Uniform 1..10000 µs, each value once: the q-quantile by rank is 10000 q.
  LatencyHistogram h;
  std::vector<std::int64_t> values;
  for (std::int64_t us = 1; us <= 10000; ++us) values.push_back(us);
  std::shuffle(values.begin(), values.end(), std::mt19937_64(7));
  for (std::int64_t us : values) h.Record(us * 1000);
  EXPECT_EQ(h.count(), 10000);
  for (const double q : {0.5, 0.9, 0.99, 0.999}) {
    const double expected = 10000 * q;
    EXPECT_NEAR(h.PercentileUs(q), expected, expected * 0.01) << q;
    EXPECT_GE(h.PercentileUs(q), expected) << "upper bound of the bucket";
  }
  EXPECT_EQ(h.PercentileUs(1.0), 10000);  // exact max
  EXPECT_EQ(h.max_ns(), 10'000'000);
  EXPECT_EQ(h.min_ns(), 1000);
  EXPECT_DOUBLE_EQ(h.mean_ns(), 5000.5 * 1000);
}

TEST(LatencyHistogramTest, ExponentialDistributionPercentilesMatchTheory) {
  // Exponential with mean 2 ms: quantile q is -2 ms * ln(1 - q).
  std::mt19937_64 rng(11);
  std::exponential_distribution<double> exp(1.0 / 2000.0);
  LatencyHistogram h;
  for (int i = 0; i < 400'000; ++i) h.Record(static_cast<std::int64_t>(exp(rng) * 1000));
  for (const double q : {0.5, 0.9, 0.99}) {
    const double expected = -2000 * std::log(1 - q);
    EXPECT_NEAR(h.PercentileUs(q), expected, expected * 0.03) << q;
  }
  EXPECT_NEAR(h.mean_ns() / 1000, 2000, 2000 * 0.02);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram a, b, all;
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<std::int64_t> ns(0, 50'000'000);
  for (int i = 0; i < 5000; ++i) {
    const std::int64_t v = ns(rng);
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  LatencyHistogram empty;
  a.Merge(b);
  a.Merge(empty);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min_ns(), all.min_ns());
  EXPECT_EQ(a.max_ns(), all.max_ns());
  EXPECT_DOUBLE_EQ(a.mean_ns(), all.mean_ns());
  EXPECT_EQ(a.NonEmptyBuckets(), all.NonEmptyBuckets());
  for (const double q : {0.1, 0.5, 0.99, 0.999}) EXPECT_EQ(a.PercentileUs(q), all.PercentileUs(q));
  LatencyHistogram into_empty;
  into_empty.Merge(all);
  EXPECT_EQ(into_empty.min_ns(), all.min_ns());
}

TEST(LatencyHistogramTest, ValuesBeyondTheRangeLandInTheLastBucketWithAnExactMax) {
  LatencyHistogram h;
  h.Record(-5);               // clock skew: counts as 0
  h.Record(500'000'000'000);  // 500 s
  EXPECT_EQ(h.count(), 2);
  EXPECT_EQ(h.min_ns(), 0);
  EXPECT_EQ(h.PercentileUs(1.0), 500'000'000);
  const auto buckets = h.NonEmptyBuckets();
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(buckets[0].first, 0);
  EXPECT_GE(buckets[1].first, LatencyHistogram::kMaxTrackableUs);
  // Buckets hold whole microseconds (200.5 µs is in bucket 200), and a
  // percentile never exceeds the exact maximum.
  LatencyHistogram one;
  one.Record(200'500);
  EXPECT_EQ(one.PercentileUs(0.5), 200);
  EXPECT_EQ(one.PercentileUs(1.0), 200.5);
  LatencyHistogram wide;
  wide.Record(5'000'000);  // 5 ms: bucket 4992-5023 µs
  EXPECT_EQ(wide.PercentileUs(0.5), 5000);
}

TEST(LatencyHistogramTest, ClearForgetsEveryValue) {
  LatencyHistogram h;
  for (std::int64_t ns = 1'000; ns <= 9'000'000; ns *= 3) h.Record(ns);
  h.Clear();
  EXPECT_EQ(h.count(), 0);
  EXPECT_EQ(h.max_ns(), 0);
  EXPECT_EQ(h.mean_ns(), 0);
  EXPECT_TRUE(h.NonEmptyBuckets().empty());
  h.Record(42'000);
  EXPECT_EQ(h.min_ns(), 42'000);
  EXPECT_EQ(h.max_ns(), 42'000);
  EXPECT_EQ(h.PercentileUs(0.5), 42);
}

}  // namespace
}  // namespace polycrud::bench
