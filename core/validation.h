// Field rules of API.md, checked once in the core for every protocol. Each
// function returns OK or kInvalidArgument naming the field. Thread-safe (pure).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "core/status.h"
#include "core/user.h"

namespace polycrud {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

Status ValidateId(std::int64_t id, std::string_view field = "id");
Status ValidateUsername(std::string_view username);
Status ValidateEmail(std::string_view email);
Status ValidateFullName(std::string_view full_name);
Status ValidateDraft(const UserDraft& draft);
Status ValidatePatch(const UserPatch& patch);
Status ValidateBatchIds(std::span<const std::int64_t> ids);
// Accepts 0 (meaning the default page size) and 1..kMaxPageLimit.
Status ValidateListArgs(std::int64_t after_id, std::int32_t limit);
// A search prefix is checked like the fields it matches: 1-254 bytes of
// valid UTF-8, no spaces or control characters, at most one '@'. The limit
// accepts 0 (the default, kDefaultSearchLimit) and 1..kMaxSearchLimit.
Status ValidateSearchArgs(std::string_view prefix, std::int32_t limit);

}  // namespace polycrud
