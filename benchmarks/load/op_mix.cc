#include "benchmarks/load/op_mix.h"

#include <charconv>
#include <stdexcept>

namespace polycrud::bench {

OpMix OpMix::Parse(std::string_view text) {
  OpMix mix;
  std::array<bool, kOpCount> seen{};
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find(',', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view part = text.substr(pos, end - pos);
    pos = end + 1;
    const std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      throw std::invalid_argument("mix: expected op=weight, got '" + std::string(part) + "'");
    }
    const std::string_view name = part.substr(0, eq);
    const std::string_view value = part.substr(eq + 1);
    std::size_t index = kOpCount;
    for (std::size_t i = 0; i < kOpCount; ++i) {
      if (kOpNames[i] == name) index = i;
    }
    if (index == kOpCount) {
      throw std::invalid_argument("mix: unknown operation '" + std::string(name) +
                                  "' (ping, get, batch_get, list, create, update, delete)");
    }
    if (seen[index]) throw std::invalid_argument("mix: '" + std::string(name) + "' given twice");
    seen[index] = true;
    std::int64_t weight = -1;
    const auto [ptr, error] = std::from_chars(value.data(), value.data() + value.size(), weight);
    if (error != std::errc() || ptr != value.data() + value.size() || weight < 0 ||
        weight > 1'000'000) {
      throw std::invalid_argument("mix: the weight of '" + std::string(name) +
                                  "' must be an integer 0-1000000, got '" + std::string(value) +
                                  "'");
    }
    mix.weights_[index] = weight;
  }
  for (std::size_t i = 0; i < kOpCount; ++i) {
    mix.total_ += mix.weights_[i];
    mix.cumulative_[i] = mix.total_;
  }
  if (mix.total_ == 0) throw std::invalid_argument("mix: every weight is 0");
  return mix;
}

bool OpMix::needs_token() const {
  for (std::size_t i = 0; i < kOpCount; ++i) {
    if (i != static_cast<std::size_t>(Op::kPing) && weights_[i] > 0) return true;
  }
  return false;
}

}  // namespace polycrud::bench
