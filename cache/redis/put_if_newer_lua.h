// The cache protocol's fill script, cache/redis/put_if_newer.lua, embedded at
// build time (the benchmark peers read the same file).
#pragma once

#include <string_view>

namespace polycrud {

// The script's text, byte for byte as in the file.
std::string_view PutIfNewerScript();

}  // namespace polycrud
