#include "benchmarks/load/arrival_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace polycrud::bench {
namespace {

TEST(ArrivalScheduleTest, UniformArrivalsAreExactlyOneOverRateApart) {
  ArrivalSchedule schedule(3000, Arrivals::kUniform, 1);
  std::int64_t index = -1, offset = -1;
  for (std::int64_t i = 0; i < 30'000; ++i) {
    ASSERT_TRUE(schedule.Take(std::int64_t{1} << 62, &index, &offset));
    EXPECT_EQ(index, i);
    // i / rate, rounded to the nanosecond, without accumulated error.
    EXPECT_EQ(offset, std::llround(static_cast<double>(i) * 1e9 / 3000)) << i;
  }
  EXPECT_EQ(offset, 9'999'666'667);
}

TEST(ArrivalScheduleTest, TakeStopsAtTheLimitAndLeavesTheArrivalThere) {
  ArrivalSchedule schedule(1000, Arrivals::kUniform, 1);  // one per ms
  std::int64_t index = 0, offset = 0;
  int taken = 0;
  while (schedule.Take(10'000'000, &index, &offset)) ++taken;
  EXPECT_EQ(taken, 10);  // 0, 1, ..., 9 ms are before 10 ms
  EXPECT_EQ(schedule.taken(), 10);
  EXPECT_FALSE(schedule.Take(10'000'000, &index, &offset));
  ASSERT_TRUE(schedule.Take(10'000'001, &index, &offset));
  EXPECT_EQ(index, 10);
  EXPECT_EQ(offset, 10'000'000);
}

TEST(ArrivalScheduleTest, PoissonGapsHaveMeanAndDeviationOneOverRate) {
  ArrivalSchedule schedule(2000, Arrivals::kPoisson, 17);
  std::int64_t index = 0, offset = 0;
  ASSERT_TRUE(schedule.Take(std::int64_t{1} << 62, &index, &offset));
  EXPECT_EQ(offset, 0);  // the first arrival is at t0
  std::int64_t previous = 0;
  double sum = 0, sum_sq = 0;
  constexpr int kGaps = 200'000;
  for (int i = 0; i < kGaps; ++i) {
    ASSERT_TRUE(schedule.Take(std::int64_t{1} << 62, &index, &offset));
    const double gap = static_cast<double>(offset - previous) / 1e9;
    ASSERT_GE(gap, 0);
    previous = offset;
    sum += gap;
    sum_sq += gap * gap;
  }
  const double mean = sum / kGaps;
  const double sd = std::sqrt(sum_sq / kGaps - mean * mean);
  EXPECT_NEAR(mean, 1.0 / 2000, 0.01 / 2000);
  EXPECT_NEAR(sd, 1.0 / 2000, 0.02 / 2000);  // exponential: sd = mean
  // Seeded: the same seed gives the same schedule.
  ArrivalSchedule again(2000, Arrivals::kPoisson, 17);
  for (int i = 0; i <= kGaps; ++i) ASSERT_TRUE(again.Take(std::int64_t{1} << 62, &index, &offset));
  EXPECT_EQ(offset, previous);
}

TEST(ArrivalScheduleTest, ConcurrentTakersGetEveryArrivalOnce) {
  ArrivalSchedule schedule(1e6, Arrivals::kUniform, 1);
  constexpr std::int64_t kLimit = 100'000'000;  // 100 ms: 100,000 arrivals
  std::vector<std::vector<std::int64_t>> got(4);
  std::vector<std::thread> threads;
  for (auto& mine : got) {
    threads.emplace_back([&schedule, &mine] {
      std::int64_t index = 0, offset = 0;
      while (schedule.Take(kLimit, &index, &offset)) mine.push_back(index);
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::int64_t> all;
  std::size_t total = 0;
  for (const auto& mine : got) {
    all.insert(mine.begin(), mine.end());
    total += mine.size();
  }
  EXPECT_EQ(total, 100'000u);
  EXPECT_EQ(all.size(), 100'000u);
  EXPECT_EQ(*all.rbegin(), 99'999);
}

TEST(ArrivalScheduleTest, RejectsANonPositiveRate) {
  EXPECT_THROW(ArrivalSchedule(0, Arrivals::kUniform, 1), std::invalid_argument);
}

}  // namespace
}  // namespace polycrud::bench
