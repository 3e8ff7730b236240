#include "tests/support/settings.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace polycrud::testing {

std::string Setting(const char* name) {
  if (const char* value = std::getenv(name); value != nullptr && *value != '\0') return value;
  for (const SettingDefault* s = kSettingDefaults; s->name != nullptr; ++s) {
    if (std::strcmp(s->name, name) == 0) return s->value;
  }
  throw std::runtime_error(std::string("unknown test setting ") + name);
}

}  // namespace polycrud::testing
