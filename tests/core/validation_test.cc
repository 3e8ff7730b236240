// The field rules of API.md, boundaries on both sides, as the core checks them
// for every protocol.
#include "core/validation.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace polycrud {
namespace {

using namespace std::literals;

// Asserts that `status` is kInvalidArgument naming `field`.
::testing::AssertionResult IsInvalid(const Status& status, std::string_view field) {
  if (status.code() != StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "expected INVALID_ARGUMENT, got " << status.ToString();
  }
  if (status.field() != field) {
    return ::testing::AssertionFailure()
           << "expected field '" << field << "', got '" << status.field() << "'";
  }
  if (status.message().empty()) return ::testing::AssertionFailure() << "empty message";
  return ::testing::AssertionSuccess();
}

std::string Repeat(std::string_view unit, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += unit;
  return out;
}

// ---------------------------------------------------------------- username

TEST(ValidateUsernameTest, AcceptsThreeToThirtyTwoCharacters) {
  EXPECT_TRUE(ValidateUsername("abc").ok());
  EXPECT_TRUE(ValidateUsername(std::string(32, 'a')).ok());
}

TEST(ValidateUsernameTest, RejectsTooShortOrTooLong) {
  EXPECT_TRUE(IsInvalid(ValidateUsername(""), "username"));
  EXPECT_TRUE(IsInvalid(ValidateUsername("ab"), "username"));
  EXPECT_TRUE(IsInvalid(ValidateUsername(std::string(33, 'a')), "username"));
}

TEST(ValidateUsernameTest, AcceptsEveryAllowedCharacter) {
  for (const char c : std::string_view("abcdefghijklmnopqrstuvwxyz0123456789_.-")) {
    const std::string name = "ab"s + c;
    EXPECT_TRUE(ValidateUsername(name).ok()) << name;
  }
  EXPECT_TRUE(ValidateUsername("ada.lovelace_1815-x").ok());
  EXPECT_TRUE(ValidateUsername("...").ok());
}

TEST(ValidateUsernameTest, RejectsUpperCaseAndOtherAsciiCharacters) {
  EXPECT_TRUE(IsInvalid(ValidateUsername("Alice"), "username"));
  EXPECT_TRUE(IsInvalid(ValidateUsername("aliCe"), "username"));
  for (const char c : std::string_view("AZ @+/\\'\"`!#$%&*()=,;:<>?[]{}|~^\t\n\x7f")) {
    const std::string name = "ab"s + c + "cd";
    EXPECT_TRUE(IsInvalid(ValidateUsername(name), "username")) << static_cast<int>(c);
  }
  EXPECT_TRUE(IsInvalid(ValidateUsername("ab\0cd"s), "username"));
}

TEST(ValidateUsernameTest, RejectsNonAsciiLetters) {
  // Each is 2-4 code points, 3+ bytes: only the character set can refuse them.
  for (const std::string& name : {"jos\xC3\xA9"s,  // é
                                  "stra\xC3\x9F"
                                  "e"s,  // ß
                                  "\xC4\xB1"
                                  "ab"s,  // dotless ı
                                  "\xEF\xBD\x81"
                                  "bc"s,                           // full-width ａ
                                  "ab\xF0\x9F\x98\x80"s,           // emoji
                                  "\xD0\xB0\xD0\xB1\xD0\xB2"s}) {  // Cyrillic абв
    EXPECT_TRUE(IsInvalid(ValidateUsername(name), "username")) << name;
  }
}

// ---------------------------------------------------------------- email

TEST(ValidateEmailTest, AcceptsOrdinaryAddresses) {
  for (const std::string& email :
       {"a@b"s, "ada@example.com"s, "Ada.Lovelace+tag@Example.COM"s, "o'brien@example.ie"s,
        "jos\xC3\xA9@ex\xC3\xA4mple.com"s, "user@[127.0.0.1]"s}) {
    EXPECT_TRUE(ValidateEmail(email).ok()) << email;
  }
}

TEST(ValidateEmailTest, Accepts254BytesAndRejects255) {
  const std::string domain = "@example.com";
  const std::string at_limit = std::string(254 - domain.size(), 'a') + domain;
  ASSERT_EQ(at_limit.size(), 254u);
  EXPECT_TRUE(ValidateEmail(at_limit).ok());
  EXPECT_TRUE(IsInvalid(ValidateEmail("a" + at_limit), "email"));
}

TEST(ValidateEmailTest, CountsBytesNotCharacters) {
  // 127 two-byte characters: 127 code points but 254 + 12 bytes.
  const std::string email = Repeat("\xC3\xA9", 127) + "@example.com";
  EXPECT_TRUE(IsInvalid(ValidateEmail(email), "email"));
  const std::string fits = Repeat("\xC3\xA9", 121) + "@example.com";  // 254 bytes
  ASSERT_EQ(fits.size(), 254u);
  EXPECT_TRUE(ValidateEmail(fits).ok());
}

TEST(ValidateEmailTest, RequiresExactlyOneAt) {
  EXPECT_TRUE(IsInvalid(ValidateEmail(""), "email"));
  EXPECT_TRUE(IsInvalid(ValidateEmail("ada.example.com"), "email"));
  EXPECT_TRUE(IsInvalid(ValidateEmail("ada@lovelace@example.com"), "email"));
  EXPECT_TRUE(IsInvalid(ValidateEmail("ada@@example.com"), "email"));
  EXPECT_TRUE(IsInvalid(ValidateEmail("@@"), "email"));
}

TEST(ValidateEmailTest, RequiresLocalPartAndDomain) {
  EXPECT_TRUE(IsInvalid(ValidateEmail("@example.com"), "email"));
  EXPECT_TRUE(IsInvalid(ValidateEmail("ada@"), "email"));
  EXPECT_TRUE(IsInvalid(ValidateEmail("@"), "email"));
}

TEST(ValidateEmailTest, RejectsSpacesAndControlCharacters) {
  const std::vector<std::string> bad = {
      "ada lovelace@example.com"s,
      " ada@example.com"s,
      "ada@example.com "s,
      "ada@exa mple.com"s,
      "ada\t@example.com"s,
      "ada\n@example.com"s,
      "ada\r\n@example.com"s,
      "ada\0@example.com"s,
      "ada\x1B@example.com"s,
      "ada\x7F@example.com"s,
      "ada\xC2\x85@example.com"s,      // U+0085 NEXT LINE (C1 control)
      "ada\xC2\xA0@example.com"s,      // U+00A0 NO-BREAK SPACE
      "ada\xE3\x80\x80@example.com"s,  // U+3000 IDEOGRAPHIC SPACE
      "ada\xE2\x80\xA8@example.com"s,  // U+2028 LINE SEPARATOR
      "ada\xE2\x80\x83@example.com"s,  // U+2003 EM SPACE
      "ada\xE2\x80\xAF@example.com"s,  // U+202F NARROW NO-BREAK SPACE
      "ada\xE1\x9A\x80@example.com"s,  // U+1680 OGHAM SPACE MARK
  };
  for (const std::string& email : bad) {
    EXPECT_TRUE(IsInvalid(ValidateEmail(email), "email")) << email;
  }
}

TEST(ValidateEmailTest, RejectsInvalidUtf8) {
  EXPECT_TRUE(IsInvalid(ValidateEmail("ada\xFF@example.com"), "email"));
  EXPECT_TRUE(IsInvalid(ValidateEmail("ada\xC0\xA0@example.com"), "email"));  // overlong space
  EXPECT_TRUE(IsInvalid(ValidateEmail("ada@example.com\xE2\x82"), "email"));  // truncated
}

// ---------------------------------------------------------------- full_name

TEST(ValidateFullNameTest, AcceptsOneToOneHundredTwentyEightCodePoints) {
  EXPECT_TRUE(ValidateFullName("A").ok());
  EXPECT_TRUE(ValidateFullName(std::string(128, 'a')).ok());
}

TEST(ValidateFullNameTest, RejectsEmptyAndTooLong) {
  EXPECT_TRUE(IsInvalid(ValidateFullName(""), "full_name"));
  EXPECT_TRUE(IsInvalid(ValidateFullName(std::string(129, 'a')), "full_name"));
}

TEST(ValidateFullNameTest, CountsMultiByteCharactersAsOne) {
  for (const std::string_view unit : {"\xC3\xA9"sv,             // é, 2 bytes
                                      "\xE4\xB8\xAD"sv,         // 中, 3 bytes
                                      "\xF0\x9F\x98\x80"sv}) {  // 😀, 4 bytes
    EXPECT_TRUE(ValidateFullName(unit).ok()) << unit;
    EXPECT_TRUE(ValidateFullName(Repeat(unit, 128)).ok()) << unit;
    EXPECT_TRUE(IsInvalid(ValidateFullName(Repeat(unit, 129)), "full_name")) << unit;
  }
}

TEST(ValidateFullNameTest, AcceptsAccentsEmojiQuotesAndSqlLookalikes) {
  for (const std::string& name : {
           "Ada Lovelace"s,
           "Zo\xC3\xAB \xC3\x85ngstr\xC3\xB6m-N\xC3\xBA\xC3\xB1"
           "ez"s,
           "e\xCC\x81l\xC3\xA8ve"s,  // combining acute accent
           "O'Brien \"Bobby\" `x`"s,
           "'; DROP TABLE users; --"s,
           "Robert'); DELETE FROM users WHERE ('1'='1"s,
           "<script>alert(1)</script>"s,
           "back\\slash %s %n {0}"s,
           "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB dev"s,   // 👩‍💻 (zero-width joiner)
           "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7"s,           // Arabic, right to left
           "\xE5\xB1\xB1\xE7\x94\xB0 \xE5\xA4\xAA\xE9\x83\x8E"s,  // 山田 太郎
           "\xC2\xA0no-break\xC2\xA0spaces"s,
       }) {
    EXPECT_TRUE(ValidateFullName(name).ok()) << name;
  }
}

TEST(ValidateFullNameTest, RejectsControlCharacters) {
  for (const std::string& control :
       {"\t"s, "\n"s, "\r"s, "\0"s, "\x01"s, "\x1B"s, "\x1F"s, "\x7F"s, "\xC2\x80"s, "\xC2\x85"s,
        "\xC2\x9F"s, "\xE2\x80\xA8"s, "\xE2\x80\xA9"s}) {
    const std::string name = "Ada" + control + "Lovelace";
    EXPECT_TRUE(IsInvalid(ValidateFullName(name), "full_name")) << name;
  }
  EXPECT_TRUE(IsInvalid(ValidateFullName("\n"), "full_name"));
}

TEST(ValidateFullNameTest, RejectsInvalidUtf8) {
  for (const std::string& name : {
           "\x80"s,                      // lone continuation byte
           "Ada\x80Lovelace"s,           // continuation byte in the middle
           "\xBF"s,                      // another lone continuation byte
           "\xC0\x80"s,                  // overlong NUL
           "\xC1\xBF"s,                  // overlong U+007F
           "\xE0\x80\x80"s,              // overlong, 3 bytes
           "\xE0\x9F\xBF"s,              // overlong U+07FF
           "\xF0\x80\x80\x80"s,          // overlong, 4 bytes
           "\xF0\x8F\xBF\xBF"s,          // overlong U+FFFF
           "\xED\xA0\x80"s,              // U+D800, high surrogate
           "\xED\xBF\xBF"s,              // U+DFFF, low surrogate
           "\xED\xA0\xBD\xED\xB8\x80"s,  // surrogate pair encoded as CESU-8
           "\xF4\x90\x80\x80"s,          // U+110000, above U+10FFFF
           "\xF5\x80\x80\x80"s,          // lead byte F5
           "\xF8\x88\x80\x80\x80"s,      // 5-byte form
           "\xFE"s,
           "\xFF"s,
           "\xC3"s,                 // truncated 2-byte sequence
           "\xE2\x82"s,             // truncated euro sign
           "\xF0\x9F\x98"s,         // truncated emoji
           "Ada\xE2\x82Lovelace"s,  // truncated, followed by ASCII
           "\xC3\xC3\xA9"s,         // lead byte followed by a lead byte
       }) {
    EXPECT_FALSE(IsValidUtf8(name)) << ::testing::PrintToString(name);
    EXPECT_TRUE(IsInvalid(ValidateFullName(name), "full_name")) << ::testing::PrintToString(name);
  }
}

TEST(IsValidUtf8Test, AcceptsTheBoundariesOfEveryLength) {
  for (const std::string& s :
       {""s, "\x01"s, "\x7F"s, "\xC2\x80"s, "\xDF\xBF"s, "\xE0\xA0\x80"s, "\xED\x9F\xBF"s,
        "\xEE\x80\x80"s, "\xEF\xBF\xBF"s, "\xF0\x90\x80\x80"s, "\xF4\x8F\xBF\xBF"s}) {
    EXPECT_TRUE(IsValidUtf8(s)) << ::testing::PrintToString(s);
  }
}

TEST(ValidateFullNameTest, AcceptsTheHighestCodePoints) {
  EXPECT_TRUE(ValidateFullName("\xEF\xBF\xBD").ok());      // U+FFFD
  EXPECT_TRUE(ValidateFullName("\xF4\x8F\xBF\xBF").ok());  // U+10FFFF
}

// ---------------------------------------------------------------- drafts and patches

TEST(ValidateDraftTest, ReportsTheFirstInvalidField) {
  const UserDraft good{.username = "ada", .email = "ada@example.com", .full_name = "Ada"};
  EXPECT_TRUE(ValidateDraft(good).ok());

  UserDraft draft = good;
  draft.username = "A";
  EXPECT_TRUE(IsInvalid(ValidateDraft(draft), "username"));
  draft = good;
  draft.email = "ada";
  EXPECT_TRUE(IsInvalid(ValidateDraft(draft), "email"));
  draft = good;
  draft.full_name = "";
  EXPECT_TRUE(IsInvalid(ValidateDraft(draft), "full_name"));
}

TEST(ValidatePatchTest, RejectsAPatchWithNoField) {
  EXPECT_TRUE(IsInvalid(ValidatePatch(UserPatch{}), "patch"));
  EXPECT_TRUE(IsInvalid(ValidatePatch(UserPatch{.expected_version = 3}), "patch"));
}

TEST(ValidatePatchTest, AcceptsEitherFieldOrBoth) {
  EXPECT_TRUE(ValidatePatch(UserPatch{.email = "a@b"}).ok());
  EXPECT_TRUE(ValidatePatch(UserPatch{.full_name = "Ada"}).ok());
  EXPECT_TRUE(
      ValidatePatch(UserPatch{.email = "a@b", .full_name = "Ada", .expected_version = 7}).ok());
}

TEST(ValidatePatchTest, ValidatesTheFieldsItSets) {
  EXPECT_TRUE(IsInvalid(ValidatePatch(UserPatch{.email = ""}), "email"));
  EXPECT_TRUE(IsInvalid(ValidatePatch(UserPatch{.email = "a b@c"}), "email"));
  EXPECT_TRUE(IsInvalid(ValidatePatch(UserPatch{.full_name = ""}), "full_name"));
  EXPECT_TRUE(IsInvalid(ValidatePatch(UserPatch{.full_name = "\x80"}), "full_name"));
}

TEST(ValidatePatchTest, RejectsNegativeExpectedVersion) {
  EXPECT_TRUE(ValidatePatch(UserPatch{.full_name = "Ada", .expected_version = 0}).ok());
  EXPECT_TRUE(IsInvalid(ValidatePatch(UserPatch{.full_name = "Ada", .expected_version = -1}),
                        "expected_version"));
  EXPECT_TRUE(IsInvalid(
      ValidatePatch(UserPatch{.full_name = "Ada",
                              .expected_version = std::numeric_limits<std::int64_t>::min()}),
      "expected_version"));
}

// ---------------------------------------------------------------- ids, batches, pages

TEST(ValidateIdTest, AcceptsPositiveIdsOnly) {
  EXPECT_TRUE(ValidateId(1).ok());
  EXPECT_TRUE(ValidateId(std::numeric_limits<std::int64_t>::max()).ok());
  EXPECT_TRUE(IsInvalid(ValidateId(0), "id"));
  EXPECT_TRUE(IsInvalid(ValidateId(-1), "id"));
  EXPECT_TRUE(IsInvalid(ValidateId(std::numeric_limits<std::int64_t>::min()), "id"));
  EXPECT_TRUE(IsInvalid(ValidateId(0, "user_id"), "user_id"));
}

TEST(ValidateBatchIdsTest, AcceptsOneToOneThousandIds) {
  const std::vector<std::int64_t> one = {1};
  const std::vector<std::int64_t> thousand(1000, 5);
  EXPECT_TRUE(ValidateBatchIds(one).ok());
  EXPECT_TRUE(ValidateBatchIds(thousand).ok());
  const std::vector<std::int64_t> duplicates = {3, 3, 1, 3};
  EXPECT_TRUE(ValidateBatchIds(duplicates).ok());
}

TEST(ValidateBatchIdsTest, RejectsNoIdsOrMoreThanOneThousand) {
  EXPECT_TRUE(IsInvalid(ValidateBatchIds({}), "ids"));
  const std::vector<std::int64_t> too_many(1001, 5);
  EXPECT_TRUE(IsInvalid(ValidateBatchIds(too_many), "ids"));
}

TEST(ValidateBatchIdsTest, RejectsNonPositiveIds) {
  const std::vector<std::int64_t> zero = {1, 0, 2};
  const std::vector<std::int64_t> negative = {1, 2, -5};
  EXPECT_TRUE(IsInvalid(ValidateBatchIds(zero), "ids"));
  EXPECT_TRUE(IsInvalid(ValidateBatchIds(negative), "ids"));
}

TEST(ValidateListArgsTest, AcceptsLimitsOneToOneThousandAndZeroForDefault) {
  EXPECT_TRUE(ValidateListArgs(0, 0).ok());
  EXPECT_TRUE(ValidateListArgs(0, 1).ok());
  EXPECT_TRUE(ValidateListArgs(0, 1000).ok());
  EXPECT_TRUE(ValidateListArgs(std::numeric_limits<std::int64_t>::max(), 100).ok());
}

TEST(ValidateListArgsTest, RejectsOutOfRangeLimit) {
  EXPECT_TRUE(IsInvalid(ValidateListArgs(0, -1), "limit"));
  EXPECT_TRUE(IsInvalid(ValidateListArgs(0, 1001), "limit"));
  EXPECT_TRUE(IsInvalid(ValidateListArgs(0, std::numeric_limits<std::int32_t>::min()), "limit"));
  EXPECT_TRUE(IsInvalid(ValidateListArgs(0, std::numeric_limits<std::int32_t>::max()), "limit"));
}

TEST(ValidateSearchArgsTest, AcceptsWhatAUsernameOrEmailCouldStartWith) {
  EXPECT_TRUE(ValidateSearchArgs("a", 0).ok());
  EXPECT_TRUE(ValidateSearchArgs("Ann.Lee@Exam", 1).ok());
  EXPECT_TRUE(ValidateSearchArgs("100%_done\\", 100).ok());  // wildcards are literal, not invalid
  EXPECT_TRUE(ValidateSearchArgs("\xC3\xA9mile", 20).ok());  // é
  EXPECT_TRUE(ValidateSearchArgs(std::string(254, 'a'), 20).ok());
}

TEST(ValidateSearchArgsTest, RejectsWhatNoUsernameOrEmailHasAndOutOfRangeLimits) {
  EXPECT_TRUE(IsInvalid(ValidateSearchArgs("", 20), "prefix"));
  EXPECT_TRUE(IsInvalid(ValidateSearchArgs(std::string(255, 'a'), 20), "prefix"));
  EXPECT_TRUE(IsInvalid(ValidateSearchArgs("a b", 20), "prefix"));
  EXPECT_TRUE(IsInvalid(ValidateSearchArgs("a\tb", 20), "prefix"));
  EXPECT_TRUE(IsInvalid(ValidateSearchArgs(std::string("a\0b", 3), 20), "prefix"));
  EXPECT_TRUE(IsInvalid(ValidateSearchArgs("a@b@c", 20), "prefix"));
  EXPECT_TRUE(IsInvalid(ValidateSearchArgs("\xC3", 20), "prefix"));  // cut UTF-8
  EXPECT_TRUE(IsInvalid(ValidateSearchArgs("a", -1), "limit"));
  EXPECT_TRUE(IsInvalid(ValidateSearchArgs("a", 101), "limit"));
  EXPECT_TRUE(
      IsInvalid(ValidateSearchArgs("a", std::numeric_limits<std::int32_t>::max()), "limit"));
}

TEST(ValidateListArgsTest, RejectsNegativeAfterId) {
  EXPECT_TRUE(IsInvalid(ValidateListArgs(-1, 10), "after_id"));
  EXPECT_TRUE(
      IsInvalid(ValidateListArgs(std::numeric_limits<std::int64_t>::min(), 10), "after_id"));
}

// ---------------------------------------------------------------- status

TEST(StatusTest, CodeNamesAreTheApiNames) {
  EXPECT_EQ(StatusCodeName(StatusCode::kOk), "OK");
  EXPECT_EQ(StatusCodeName(StatusCode::kInvalidArgument), "INVALID_ARGUMENT");
  EXPECT_EQ(StatusCodeName(StatusCode::kUnauthenticated), "UNAUTHENTICATED");
  EXPECT_EQ(StatusCodeName(StatusCode::kPermissionDenied), "PERMISSION_DENIED");
  EXPECT_EQ(StatusCodeName(StatusCode::kNotFound), "NOT_FOUND");
  EXPECT_EQ(StatusCodeName(StatusCode::kConflict), "CONFLICT");
  EXPECT_EQ(StatusCodeName(StatusCode::kResourceExhausted), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(StatusCodeName(StatusCode::kUnavailable), "UNAVAILABLE");
  EXPECT_EQ(StatusCodeName(StatusCode::kInternal), "INTERNAL");
}

TEST(StatusTest, ConflictsCarryTheirKind) {
  EXPECT_EQ(Status::Duplicate("x").code(), StatusCode::kConflict);
  EXPECT_EQ(Status::Duplicate("x").conflict_kind(), ConflictKind::kDuplicate);
  EXPECT_EQ(Status::VersionMismatch("x").code(), StatusCode::kConflict);
  EXPECT_EQ(Status::VersionMismatch("x").conflict_kind(), ConflictKind::kVersionMismatch);
  EXPECT_EQ(Status::NotFound("x").conflict_kind(), ConflictKind::kNone);
  EXPECT_EQ(Status::Unavailable("x", 250).retry_after_ms(), 250);
}

}  // namespace
}  // namespace polycrud
