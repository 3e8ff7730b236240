#include "core/sha256_token_verifier.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <optional>

namespace polycrud {
namespace {

Sha256TokenVerifier::Digest Sha256(std::string_view data) {
  Sha256TokenVerifier::Digest out{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

std::optional<Sha256TokenVerifier::Digest> ParseHex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Sha256TokenVerifier::Digest out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

}  // namespace

StatusOr<Sha256TokenVerifier> Sha256TokenVerifier::Create(
    const std::vector<std::string>& admin_sha256_hex,
    const std::vector<std::string>& reader_sha256_hex) {
  std::vector<Entry> entries;
  for (const auto& [hashes, role] :
       {std::pair{&admin_sha256_hex, Role::kAdmin}, std::pair{&reader_sha256_hex, Role::kReader}}) {
    for (const std::string& hex : *hashes) {
      std::optional<Digest> digest = ParseHex(hex);
      if (!digest) {
        return Status::InvalidArgument("a token hash must be 64 hex digits (SHA-256)", "token");
      }
      entries.push_back({*digest, role});
    }
  }
  return Sha256TokenVerifier(std::move(entries));
}

std::string Sha256TokenVerifier::TokenId(std::string_view token) const {
  if (token.empty()) return "-";
  return HashHex(token).substr(0, 12);
}

std::string Sha256TokenVerifier::HashHex(std::string_view token) {
  static constexpr char kHex[] = "0123456789abcdef";
  const Digest digest = Sha256(token);
  std::string out;
  out.reserve(64);
  for (const unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0x0F]);
  }
  return out;
}

StatusOr<Role> Sha256TokenVerifier::Verify(std::string_view token) const {
  if (token.empty()) return Status::Unauthenticated("a bearer token is required");
  const Digest digest = Sha256(token);
  // Compare against every entry, without stopping early, so the time taken
  // does not depend on which (if any) entry matches.
  std::optional<Role> role;
  for (const Entry& entry : entries_) {
    const bool match = CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0;
    if (match && (!role || entry.role == Role::kAdmin)) role = entry.role;
  }
  if (!role) return Status::Unauthenticated("the token is not valid");
  return *role;
}

}  // namespace polycrud
