// The cache protocol's Lua scripts, embedded at build time from
// cache/redis/*.lua (the benchmark peers read put_if_newer.lua itself).
#pragma once

#include <string_view>

namespace polycrud {

// put_if_newer.lua, byte for byte: the versioned conditional fill.
std::string_view PutIfNewerScript();
// write_intent.lua, byte for byte: a writer's begin/end marks and the repair.
std::string_view WriteIntentScript();

}  // namespace polycrud
