// Domain types of the user directory and the size bounds of API.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace polycrud {

inline constexpr std::size_t kMaxBatchIds = 1000;
inline constexpr std::int32_t kMaxPageLimit = 1000;
inline constexpr std::int32_t kDefaultPageLimit = 100;
inline constexpr std::size_t kMaxEmailBytes = 254;
// SearchUsers: a prefix of 1-254 bytes (an e-mail's bound), 1-100 results.
inline constexpr std::size_t kMaxSearchPrefixBytes = kMaxEmailBytes;
inline constexpr std::int32_t kMaxSearchLimit = 100;
inline constexpr std::int32_t kDefaultSearchLimit = 20;

struct User {
  std::int64_t id = 0;
  std::string username;
  std::string email;
  std::string full_name;
  std::int64_t version = 0;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;

  bool operator==(const User&) const = default;
};

// Input of CreateUser.
struct UserDraft {
  std::string username;
  std::string email;
  std::string full_name;
};

// Input of UpdateUser: unset fields stay as they are; expected_version 0 means
// "whatever the current version is".
struct UserPatch {
  std::optional<std::string> email;
  std::optional<std::string> full_name;
  std::int64_t expected_version = 0;
};

struct UserPage {
  std::vector<User> users;
  std::int64_t next_after_id = 0;  // 0: no further page
};

enum class Role : std::uint8_t { kReader, kAdmin };

}  // namespace polycrud
