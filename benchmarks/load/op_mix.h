// The operations polycrud-bench issues and their mix: integer weights per
// operation, parsed from "get=95,update=4,create=1".
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace polycrud::bench {

enum class Op : std::uint8_t { kPing, kGet, kBatchGet, kList, kCreate, kUpdate, kDelete, kSearch };
inline constexpr std::size_t kOpCount = 8;
inline constexpr std::array<std::string_view, kOpCount> kOpNames = {
    "ping", "get", "batch_get", "list", "create", "update", "delete", "search"};

inline std::string_view OpName(Op op) { return kOpNames[static_cast<std::size_t>(op)]; }

class OpMix {
 public:
  // Parses "op=weight[,op=weight...]" (ops from kOpNames, each at most once,
  // weights integers 0..1,000,000, at least one positive). Throws
  // std::invalid_argument with a message naming the offending part.
  static OpMix Parse(std::string_view text);

  std::int64_t weight(Op op) const { return weights_[static_cast<std::size_t>(op)]; }
  bool uses(Op op) const { return weight(op) > 0; }
  // True if any operation other than ping is in the mix (they need a token).
  bool needs_token() const;

  // An operation drawn with probability weight / total weight.
  template <typename Rng>
  Op operator()(Rng& rng) const {
    const std::int64_t r = std::uniform_int_distribution<std::int64_t>(0, total_ - 1)(rng);
    std::size_t i = 0;
    while (r >= cumulative_[i]) ++i;
    return static_cast<Op>(i);
  }

 private:
  std::array<std::int64_t, kOpCount> weights_{};
  std::array<std::int64_t, kOpCount> cumulative_{};
  std::int64_t total_ = 0;
};

}  // namespace polycrud::bench
