// Sha256TokenVerifier: the TokenVerifier port over tokens configured as
// SHA-256 hashes (hex). The clear tokens are never stored; a presented token
// is hashed and compared in constant time against every configured hash.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "core/ports.h"

namespace polycrud {

class Sha256TokenVerifier final : public TokenVerifier {
 public:
  using Digest = std::array<unsigned char, 32>;

  // Each list holds 64-hex-digit SHA-256 hashes. Fails with kInvalidArgument
  // on a malformed hash.
  static StatusOr<Sha256TokenVerifier> Create(const std::vector<std::string>& admin_sha256_hex,
                                              const std::vector<std::string>& reader_sha256_hex);

  // Lower-case hex SHA-256 of `token` (what an operator configures).
  static std::string HashHex(std::string_view token);

  // TokenVerifier:
  StatusOr<Role> Verify(std::string_view token) const override;
  // The first 12 hex digits of HashHex(token), which an operator finds at the
  // start of the configured hash; "-" for the empty token.
  std::string TokenId(std::string_view token) const override;

 private:
  struct Entry {
    Digest digest;
    Role role;
  };
  explicit Sha256TokenVerifier(std::vector<Entry> entries) : entries_(std::move(entries)) {}

  std::vector<Entry> entries_;
};

}  // namespace polycrud
