#include "core/request.h"

#include <atomic>
#include <cstdint>
#include <random>

namespace polycrud {
namespace {

bool UsableChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=';
}

}  // namespace

std::string NewRequestId() {
  // A random start per process, then a counter mixed by an odd multiplier
  // (a bijection on 64 bits): unique within the process, no lock.
  static const std::uint64_t start =
      std::random_device{}() * 0x100000001ULL ^ std::random_device{}();
  static std::atomic<std::uint64_t> next{0};
  const std::uint64_t n =
      (start + next.fetch_add(1, std::memory_order_relaxed)) * 0x9E3779B97F4A7C15ULL;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text(16, '0');
  for (int i = 15; i >= 0; --i) text[static_cast<std::size_t>(15 - i)] = kHex[(n >> (4 * i)) & 0xF];
  return text;
}

std::string AcceptRequestId(std::string_view from_client) {
  if (from_client.empty() || from_client.size() > kMaxRequestIdBytes) return NewRequestId();
  for (const char c : from_client) {
    if (!UsableChar(c)) return NewRequestId();
  }
  return std::string(from_client);
}

}  // namespace polycrud
