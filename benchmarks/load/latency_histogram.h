// LatencyHistogram: a small high-dynamic-range histogram of latencies in the
// spirit of HdrHistogram (log-linear buckets), for polycrud-bench. Values are
// recorded in nanoseconds and bucketed by whole microseconds (truncated):
// exact below 128 µs, then 128 sub-buckets per power of two, so a bucket is
// at most 1/128 (0.8%) wide relative to its values, up to kMaxTrackableUs
// (100 s; larger values land in the last bucket). Count, sum, min and max are exact. Histograms of
// different threads merge by adding bucket counts. Not thread-safe: one per
// thread, merged at the end.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace polycrud::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;  // 128 sub-buckets per power of two
  static constexpr std::int64_t kSubBuckets = std::int64_t{1} << kSubBucketBits;
  static constexpr std::int64_t kMaxTrackableUs = 100'000'000;  // 100 s

  LatencyHistogram();

  // Records one latency of `ns` nanoseconds (negative values count as 0).
  void Record(std::int64_t ns);
  // Adds every value of `other` to this one.
  void Merge(const LatencyHistogram& other);
  // Forgets every value (keeps the buckets' storage).
  void Clear();

  std::int64_t count() const { return count_; }
  // Exact minimum and maximum in nanoseconds (0 when empty).
  std::int64_t min_ns() const { return count_ == 0 ? 0 : min_ns_; }
  std::int64_t max_ns() const { return max_ns_; }
  // Exact mean in nanoseconds (0 when empty).
  double mean_ns() const;

  // The value at quantile q in [0, 1], by rank: the upper bound (in µs) of
  // the bucket holding the ceil(q * count)-th smallest value, capped at the
  // exact maximum; q = 1 gives the exact maximum. 0 when empty.
  double PercentileUs(double q) const;

  // (upper bound in µs, count) of every non-empty bucket, in value order.
  std::vector<std::pair<std::int64_t, std::int64_t>> NonEmptyBuckets() const;

  // The bucket index of a value in µs, and the largest µs value of a bucket.
  static std::size_t BucketIndex(std::int64_t us);
  static std::int64_t BucketUpperBoundUs(std::size_t index);

 private:
  std::vector<std::int64_t> counts_;
  std::int64_t count_ = 0;
  double sum_ns_ = 0;
  std::int64_t min_ns_ = 0;
  std::int64_t max_ns_ = 0;
};

}  // namespace polycrud::bench
