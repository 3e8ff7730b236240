#include "tests/support/settings.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>

namespace polycrud::testing {

std::string Setting(const char* name) {
  if (const char* value = std::getenv(name); value != nullptr && *value != '\0') return value;
  for (const SettingDefault* s = kSettingDefaults; s->name != nullptr; ++s) {
    if (std::strcmp(s->name, name) == 0) return s->value;
  }
  throw std::runtime_error(std::string("unknown test setting ") + name);
}

std::string UniqueName(const std::string& prefix) {
  static const std::string run = [] {
    std::random_device device;
    const std::uint64_t bits =
        (static_cast<std::uint64_t>(device()) << 16) ^ static_cast<std::uint64_t>(device());
    char hex[13];
    std::snprintf(hex, sizeof hex, "%012llx",
                  static_cast<unsigned long long>(bits & 0xffff'ffff'ffffULL));
    return std::string(hex);
  }();
  static std::atomic<int> counter{0};
  return prefix + "_" + run + "_" + std::to_string(counter++);
}

}  // namespace polycrud::testing
