// Sha256TokenVerifier: roles from configured SHA-256 hashes, nothing else;
// ReloadableTokenVerifier: a set replaced while calls go on.
#include "core/sha256_token_verifier.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/reloadable_token_verifier.h"

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

TEST(ReloadableTokenVerifierTest, AReplacedSetDecidesTheCallsAfterIt) {
  ReloadableTokenVerifier tokens(std::make_shared<Sha256TokenVerifier>(MakeVerifier()));
  ASSERT_TRUE(tokens.Verify(kAdmin).ok());
  StatusOr<Sha256TokenVerifier> next =
      Sha256TokenVerifier::Create({Sha256TokenVerifier::HashHex("rotated")}, {});
  ASSERT_TRUE(next.ok());
  tokens.Replace(std::make_shared<Sha256TokenVerifier>(std::move(next).value()));
  EXPECT_EQ(tokens.Verify(kAdmin).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(tokens.Verify(kReader).status().code(), StatusCode::kUnauthenticated);
  StatusOr<Role> role = tokens.Verify("rotated");
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(*role, Role::kAdmin);
  EXPECT_EQ(tokens.TokenId("rotated"), Sha256TokenVerifier::HashHex("rotated").substr(0, 12));
}

// Calls on other threads while the set is replaced again and again: each
// answers from one whole set (under AddressSanitizer, a set freed while a
// call used it would be a use after free).
TEST(ReloadableTokenVerifierTest, CallsDuringReplacementsAnswerFromOneWholeSet) {
  ReloadableTokenVerifier tokens(std::make_shared<Sha256TokenVerifier>(MakeVerifier()));
  std::atomic<bool> stop{false};
  std::atomic<int> admitted{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 2; ++t) {
    callers.emplace_back([&] {
      while (!stop.load()) {
        for (const char* token : {kAdmin, "rotated"}) {
          StatusOr<Role> role = tokens.Verify(token);
          if (role.ok() && *role == Role::kAdmin) {
            admitted.fetch_add(1);
          } else if (role.ok() || role.status().code() != StatusCode::kUnauthenticated) {
            wrong.fetch_add(1);
          }
        }
      }
    });
  }
  for (int i = 0; i < 2000; ++i) {
    StatusOr<Sha256TokenVerifier> next = Sha256TokenVerifier::Create(
        {Sha256TokenVerifier::HashHex(i % 2 == 0 ? "rotated" : kAdmin)}, {});
    ASSERT_TRUE(next.ok());
    tokens.Replace(std::make_shared<Sha256TokenVerifier>(std::move(next).value()));
  }
  for (int i = 0; i < 500 && admitted.load() == 0; ++i) {  // callers that started late
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop.store(true);
  for (std::thread& caller : callers) caller.join();
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace polycrud
