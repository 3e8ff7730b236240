#include "benchmarks/load/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace polycrud::bench {

std::size_t LatencyHistogram::BucketIndex(std::int64_t us) {
  us = std::clamp<std::int64_t>(us, 0, kMaxTrackableUs);
  if (us < kSubBuckets) return static_cast<std::size_t>(us);
  const int exponent =
      static_cast<int>(std::bit_width(static_cast<std::uint64_t>(us))) - 1;  // >= kSubBucketBits
  const int shift = exponent - kSubBucketBits;
  const std::int64_t sub = (us >> shift) - kSubBuckets;  // 0 .. kSubBuckets - 1
  return static_cast<std::size_t>(kSubBuckets + std::int64_t{shift} * kSubBuckets + sub);
}

std::int64_t LatencyHistogram::BucketUpperBoundUs(std::size_t index) {
  const auto i = static_cast<std::int64_t>(index);
  if (i < kSubBuckets) return i;
  const std::int64_t shift = (i - kSubBuckets) / kSubBuckets;
  const std::int64_t sub = (i - kSubBuckets) % kSubBuckets;
  return ((kSubBuckets + sub + 1) << shift) - 1;
}

LatencyHistogram::LatencyHistogram() : counts_(BucketIndex(kMaxTrackableUs) + 1, 0) {}

void LatencyHistogram::Clear() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ns_ = 0;
  min_ns_ = 0;
  max_ns_ = 0;
}

void LatencyHistogram::Record(std::int64_t ns) {
  ns = std::max<std::int64_t>(ns, 0);
  ++counts_[BucketIndex(ns / 1000)];
  if (count_ == 0 || ns < min_ns_) min_ns_ = ns;
  max_ns_ = std::max(max_ns_, ns);
  ++count_;
  sum_ns_ += static_cast<double>(ns);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ns_ = count_ == 0 ? other.min_ns_ : std::min(min_ns_, other.min_ns_);
  max_ns_ = std::max(max_ns_, other.max_ns_);
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
}

double LatencyHistogram::mean_ns() const {
  return count_ == 0 ? 0 : sum_ns_ / static_cast<double>(count_);
}

double LatencyHistogram::PercentileUs(double q) const {
  if (count_ == 0) return 0;
  const double max_us = static_cast<double>(max_ns_) / 1000.0;
  if (q >= 1.0) return max_us;
  const auto rank = std::max<std::int64_t>(
      1, static_cast<std::int64_t>(std::ceil(std::max(q, 0.0) * static_cast<double>(count_))));
  std::int64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(static_cast<double>(BucketUpperBoundUs(i)), max_us);
  }
  return max_us;
}

std::vector<std::pair<std::int64_t, std::int64_t>> LatencyHistogram::NonEmptyBuckets() const {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] != 0) out.emplace_back(BucketUpperBoundUs(i), counts_[i]);
  }
  return out;
}

}  // namespace polycrud::bench
