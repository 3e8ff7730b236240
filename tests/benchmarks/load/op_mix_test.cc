#include "benchmarks/load/op_mix.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <stdexcept>

namespace polycrud::bench {
namespace {

TEST(OpMixTest, ParsesWeightsAndDrawsInProportion) {
  const OpMix mix = OpMix::Parse("get=95,update=4,create=1");
  EXPECT_EQ(mix.weight(Op::kGet), 95);
  EXPECT_EQ(mix.weight(Op::kUpdate), 4);
  EXPECT_EQ(mix.weight(Op::kCreate), 1);
  EXPECT_EQ(mix.weight(Op::kPing), 0);
  EXPECT_TRUE(mix.needs_token());
  std::mt19937_64 rng(1);
  std::array<int, kOpCount> counts{};
  constexpr int kDraws = 1'000'000;
  for (int i = 0; i < kDraws; ++i) ++counts[static_cast<std::size_t>(mix(rng))];
  EXPECT_NEAR(counts[static_cast<std::size_t>(Op::kGet)] / double{kDraws}, 0.95, 0.002);
  EXPECT_NEAR(counts[static_cast<std::size_t>(Op::kUpdate)] / double{kDraws}, 0.04, 0.001);
  EXPECT_NEAR(counts[static_cast<std::size_t>(Op::kCreate)] / double{kDraws}, 0.01, 0.0005);
  EXPECT_EQ(counts[static_cast<std::size_t>(Op::kPing)], 0);
  EXPECT_EQ(counts[static_cast<std::size_t>(Op::kDelete)], 0);
}

TEST(OpMixTest, EveryOperationHasAName) {
  const OpMix mix =
      OpMix::Parse("ping=1,get=1,batch_get=1,list=1,create=1,update=1,delete=0,search=1");
  for (std::size_t i = 0; i < kOpCount; ++i) {
    const auto op = static_cast<Op>(i);
    EXPECT_EQ(mix.weight(op), op == Op::kDelete ? 0 : 1) << OpName(op);
  }
  EXPECT_FALSE(mix.uses(Op::kDelete));
  EXPECT_EQ(OpName(Op::kBatchGet), "batch_get");
  EXPECT_EQ(OpName(Op::kSearch), "search");
  EXPECT_FALSE(OpMix::Parse("ping=3").needs_token());
}

TEST(OpMixTest, RejectsMalformedMixes) {
  for (const char* bad : {"", "get", "get=", "get=x", "get=-1", "get=1.5", "fetch=1", "get=1,get=2",
                          "get=0,ping=0", "get=1,", "get=2000000"}) {
    EXPECT_THROW(OpMix::Parse(bad), std::invalid_argument) << bad;
  }
}

}  // namespace
}  // namespace polycrud::bench
