// Sha256TokenVerifier: roles from configured SHA-256 hashes, nothing else.
#include "core/sha256_token_verifier.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

namespace polycrud {
namespace {

constexpr char kAdmin[] = "correct horse battery staple";
constexpr char kReader[] = "read-only-token";

Sha256TokenVerifier MakeVerifier() {
  StatusOr<Sha256TokenVerifier> verifier = Sha256TokenVerifier::Create(
      {Sha256TokenVerifier::HashHex(kAdmin)}, {Sha256TokenVerifier::HashHex(kReader)});
  EXPECT_TRUE(verifier.ok()) << verifier.status().ToString();
  return std::move(verifier).value();
}

TEST(Sha256TokenVerifierTest, HashHexMatchesKnownVectors) {
  // FIPS 180-2, appendix B.1, and the hash of the empty string.
  EXPECT_EQ(Sha256TokenVerifier::HashHex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256TokenVerifier::HashHex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256TokenVerifierTest, AdminTokenHasAdminRole) {
  const Sha256TokenVerifier verifier = MakeVerifier();
  StatusOr<Role> role = verifier.Verify(kAdmin);
  ASSERT_TRUE(role.ok()) << role.status().ToString();
  EXPECT_EQ(*role, Role::kAdmin);
}

TEST(Sha256TokenVerifierTest, ReaderTokenHasReaderRole) {
  const Sha256TokenVerifier verifier = MakeVerifier();
  StatusOr<Role> role = verifier.Verify(kReader);
  ASSERT_TRUE(role.ok()) << role.status().ToString();
  EXPECT_EQ(*role, Role::kReader);
}

TEST(Sha256TokenVerifierTest, UnknownTokensAreUnauthenticated) {
  const Sha256TokenVerifier verifier = MakeVerifier();
  const std::string admin(kAdmin);
  std::string upper = admin;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  for (const std::string& token :
       {std::string("nobody"), admin + " ", " " + admin, admin.substr(0, admin.size() - 1), upper,
        // The configured hash is not itself a token.
        Sha256TokenVerifier::HashHex(kAdmin), std::string("Bearer ") + kAdmin}) {
    StatusOr<Role> role = verifier.Verify(token);
    ASSERT_FALSE(role.ok()) << token;
    EXPECT_EQ(role.status().code(), StatusCode::kUnauthenticated) << token;
  }
}

TEST(Sha256TokenVerifierTest, EmptyTokenIsUnauthenticated) {
  const Sha256TokenVerifier verifier = MakeVerifier();
  StatusOr<Role> role = verifier.Verify("");
  ASSERT_FALSE(role.ok());
  EXPECT_EQ(role.status().code(), StatusCode::kUnauthenticated);
}

TEST(Sha256TokenVerifierTest, NoConfiguredTokensAcceptsNobody) {
  StatusOr<Sha256TokenVerifier> verifier = Sha256TokenVerifier::Create({}, {});
  ASSERT_TRUE(verifier.ok());
  EXPECT_EQ(verifier->Verify(kAdmin).status().code(), StatusCode::kUnauthenticated);
}

TEST(Sha256TokenVerifierTest, TokenConfiguredForBothRolesIsAdmin) {
  const std::string hash = Sha256TokenVerifier::HashHex(kAdmin);
  for (const auto& [admins, readers] :
       {std::pair{std::vector{hash}, std::vector{hash}},
        std::pair{std::vector{hash}, std::vector{hash, Sha256TokenVerifier::HashHex(kReader)}}}) {
    StatusOr<Sha256TokenVerifier> verifier = Sha256TokenVerifier::Create(admins, readers);
    ASSERT_TRUE(verifier.ok());
    StatusOr<Role> role = verifier->Verify(kAdmin);
    ASSERT_TRUE(role.ok());
    EXPECT_EQ(*role, Role::kAdmin);
  }
}

TEST(Sha256TokenVerifierTest, AcceptsUpperCaseHexHashes) {
  std::string hash = Sha256TokenVerifier::HashHex(kReader);
  std::transform(hash.begin(), hash.end(), hash.begin(), ::toupper);
  StatusOr<Sha256TokenVerifier> verifier = Sha256TokenVerifier::Create({}, {hash});
  ASSERT_TRUE(verifier.ok());
  StatusOr<Role> role = verifier->Verify(kReader);
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(*role, Role::kReader);
}

TEST(Sha256TokenVerifierTest, RejectsMalformedConfiguredHashes) {
  const std::string good = Sha256TokenVerifier::HashHex(kAdmin);
  std::string non_hex = good;
  non_hex[10] = 'g';
  for (const std::string& bad : {std::string(), good.substr(0, 63), good + "0", non_hex,
                                 std::string(kAdmin), " " + good.substr(1)}) {
    StatusOr<Sha256TokenVerifier> as_admin = Sha256TokenVerifier::Create({good, bad}, {});
    ASSERT_FALSE(as_admin.ok()) << bad;
    EXPECT_EQ(as_admin.status().code(), StatusCode::kInvalidArgument) << bad;
    StatusOr<Sha256TokenVerifier> as_reader = Sha256TokenVerifier::Create({}, {bad});
    ASSERT_FALSE(as_reader.ok()) << bad;
    EXPECT_EQ(as_reader.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace polycrud
