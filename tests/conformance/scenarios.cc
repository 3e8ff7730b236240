#include "tests/conformance/scenarios.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "tests/support/server_process.h"

namespace polycrud::testing {

using clients::Outcome;
using clients::ProtocolClient;

std::vector<std::string> ConformanceProtocols() { return {"thrift", "grpc", "soap", "rest"}; }

// A username unique to this run.
std::string Unique(const std::string& prefix) {
  static std::atomic<int> counter{0};
  static const std::string run = std::to_string(std::random_device{}() % 1'000'000);
  return prefix + "_" + run + "_" + std::to_string(counter++);
}

UserDraft Draft(const std::string& username, const std::string& full_name) {
  return UserDraft{
      .username = username, .email = username + "@example.com", .full_name = full_name};
}

User MustCreate(ProtocolClient& c, const UserDraft& draft) {
  Outcome<User> out = c.CreateUser(kAdminToken, draft);
  EXPECT_TRUE(out.ok()) << out.status.message;
  return out.value.value_or(User{});
}

const std::vector<Scenario>& Scenarios() {
  static const std::vector<Scenario> scenarios = {
      {"PingNeedsNoToken",
       [](ProtocolClient& c) {
         Outcome<std::string> out = c.Ping();
         ASSERT_TRUE(out.ok()) << out.status.message;
         EXPECT_EQ(out.value->rfind("polycrud ", 0), 0u) << *out.value;
       }},
      {"CrudRoundTrip",
       [](ProtocolClient& c) {
         const UserDraft draft = Draft(Unique("conf"));
         User created = MustCreate(c, draft);
         EXPECT_GT(created.id, 0);
         EXPECT_EQ(created.version, 1);
         EXPECT_EQ(created.username, draft.username);
         EXPECT_EQ(created.email, draft.email);
         EXPECT_EQ(created.created_at_ms, created.updated_at_ms);
         Outcome<User> got = c.GetUser(kReaderToken, created.id);
         ASSERT_TRUE(got.ok()) << got.status.message;
         EXPECT_EQ(*got.value, created);
         Outcome<User> updated = c.UpdateUser(
             kAdminToken, created.id, UserPatch{.full_name = "Renamed", .expected_version = 1});
         ASSERT_TRUE(updated.ok()) << updated.status.message;
         EXPECT_EQ(updated.value->version, 2);
         EXPECT_EQ(updated.value->full_name, "Renamed");
         EXPECT_EQ(updated.value->email, created.email);
         EXPECT_TRUE(c.DeleteUser(kAdminToken, created.id).ok());
         ExpectCode(c.GetUser(kReaderToken, created.id), StatusCode::kNotFound);
       }},
      {"UnicodeAndSqlLookingNamesRoundTrip",
       [](ProtocolClient& c) {
         for (const std::string& name : std::vector<std::string>{
                  "Zoë Ångström", "李小龙", "😀🚀 emoji", "O'Brien \"quoted\" <b>&amp;</b>",
                  "'; DROP TABLE users; --", "Robert'); DELETE FROM users WHERE ('1'='1",
                  std::string(128, 'x'), "\u00e9\u0301 combining"}) {
           User u = MustCreate(c, Draft(Unique("uni"), name));
           Outcome<User> got = c.GetUser(kReaderToken, u.id);
           ASSERT_TRUE(got.ok()) << got.status.message;
           EXPECT_EQ(got.value->full_name, name);
         }
       }},
      {"InvalidFieldsAreNamed",
       [](ProtocolClient& c) {
         UserDraft bad_username = Draft("Not Valid");
         ExpectCode(c.CreateUser(kAdminToken, bad_username), StatusCode::kInvalidArgument,
                    "username");
         UserDraft bad_email = Draft(Unique("bad"));
         bad_email.email = "two@@example.com";
         ExpectCode(c.CreateUser(kAdminToken, bad_email), StatusCode::kInvalidArgument, "email");
         UserDraft bad_name = Draft(Unique("bad"));
         bad_name.full_name = std::string(129, 'y');
         ExpectCode(c.CreateUser(kAdminToken, bad_name), StatusCode::kInvalidArgument, "full_name");
         ExpectCode(c.GetUser(kReaderToken, 0), StatusCode::kInvalidArgument, "id");
         ExpectCode(c.UpdateUser(kAdminToken, 1, UserPatch{}), StatusCode::kInvalidArgument);
       }},
      {"TokensAndRoles",
       [](ProtocolClient& c) {
         User u = MustCreate(c, Draft(Unique("auth")));
         ExpectCode(c.GetUser("", u.id), StatusCode::kUnauthenticated);
         ExpectCode(c.GetUser("wrong-token", u.id), StatusCode::kUnauthenticated);
         EXPECT_TRUE(c.GetUser(kReaderToken, u.id).ok());
         EXPECT_TRUE(c.ListUsers(kReaderToken, 0, 1).ok());
         ExpectCode(c.CreateUser(kReaderToken, Draft(Unique("auth"))),
                    StatusCode::kPermissionDenied);
         ExpectCode(c.UpdateUser(kReaderToken, u.id, UserPatch{.full_name = "x"}),
                    StatusCode::kPermissionDenied);
         ExpectCode(c.DeleteUser(kReaderToken, u.id), StatusCode::kPermissionDenied);
         // Authentication comes before validation.
         ExpectCode(c.GetUser("wrong-token", -5), StatusCode::kUnauthenticated);
       }},
      {"ConflictsOnDuplicatesAndVersions",
       [](ProtocolClient& c) {
         User u = MustCreate(c, Draft(Unique("dup")));
         UserDraft same_username = Draft(u.username);
         same_username.email = "other-" + u.email;
         ExpectCode(c.CreateUser(kAdminToken, same_username), StatusCode::kConflict, "",
                    ConflictKind::kDuplicate);
         UserDraft same_email = Draft(Unique("dup"));
         same_email.email = u.email;
         for (char& ch : same_email.email) ch = static_cast<char>(std::toupper(ch));
         ExpectCode(c.CreateUser(kAdminToken, same_email), StatusCode::kConflict, "",
                    ConflictKind::kDuplicate);
         ExpectCode(
             c.UpdateUser(kAdminToken, u.id, UserPatch{.full_name = "x", .expected_version = 9}),
             StatusCode::kConflict, "", ConflictKind::kVersionMismatch);
         EXPECT_TRUE(
             c.UpdateUser(kAdminToken, u.id, UserPatch{.full_name = "y", .expected_version = 1})
                 .ok());
       }},
      {"MissingUsersAreNotFound",
       [](ProtocolClient& c) {
         constexpr std::int64_t kAbsent = 8'765'432'100;
         ExpectCode(c.GetUser(kReaderToken, kAbsent), StatusCode::kNotFound);
         ExpectCode(c.UpdateUser(kAdminToken, kAbsent, UserPatch{.full_name = "x"}),
                    StatusCode::kNotFound);
         ExpectCode(c.DeleteUser(kAdminToken, kAbsent), StatusCode::kNotFound);
       }},
      {"BatchKeepsOrderAndOmitsMissing",
       [](ProtocolClient& c) {
         User a = MustCreate(c, Draft(Unique("batch")));
         User b = MustCreate(c, Draft(Unique("batch")));
         Outcome<std::vector<User>> out =
             c.BatchGetUsers(kReaderToken, {b.id, 8'765'432'100, a.id, b.id});
         ASSERT_TRUE(out.ok()) << out.status.message;
         ASSERT_EQ(out.value->size(), 3u);
         EXPECT_EQ((*out.value)[0], b);
         EXPECT_EQ((*out.value)[1], a);
         EXPECT_EQ((*out.value)[2], b);
         ExpectCode(c.BatchGetUsers(kReaderToken, {}), StatusCode::kInvalidArgument, "ids");
         ExpectCode(c.BatchGetUsers(kReaderToken, std::vector<std::int64_t>(1001, a.id)),
                    StatusCode::kInvalidArgument, "ids");
       }},
      {"ListPagesToTheEnd",
       [](ProtocolClient& c) {
         std::vector<std::int64_t> mine;
         for (int i = 0; i < 5; ++i) mine.push_back(MustCreate(c, Draft(Unique("page"))).id);
         std::int64_t after = mine.front() - 1;
         std::vector<std::int64_t> seen;
         for (int pages = 0; pages < 100'000; ++pages) {
           Outcome<UserPage> page = c.ListUsers(kReaderToken, after, 2);
           ASSERT_TRUE(page.ok()) << page.status.message;
           ASSERT_LE(page.value->users.size(), 2u);
           for (const User& u : page.value->users) seen.push_back(u.id);
           if (page.value->next_after_id == 0) break;
           after = page.value->next_after_id;
         }
         ASSERT_GE(seen.size(), mine.size());
         EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
         EXPECT_EQ(std::vector<std::int64_t>(seen.begin(), seen.begin() + 5), mine);
         ExpectCode(c.ListUsers(kReaderToken, 0, 1001), StatusCode::kInvalidArgument, "limit");
         ExpectCode(c.ListUsers(kReaderToken, -1, 10), StatusCode::kInvalidArgument, "after_id");
       }},
      {"SearchByPrefixOfUsernameOrEmail",
       [](ProtocolClient& c) {
         // e.g. srch_123456_7x: the x ends it, so srch_123456_70x is no match.
         const std::string base = Unique("srch") + "x";
         std::string upper = base;
         for (char& ch : upper) ch = static_cast<char>(std::toupper(ch));
         // Two users by username; one whose e-mail alone starts with the
         // prefix, in capitals (e-mail is compared case-insensitively).
         User b = MustCreate(c, Draft(base + "b"));
         User a = MustCreate(c, Draft(base + "a"));
         UserDraft by_email = Draft(Unique("other"));
         by_email.email = upper + "Q@Example.com";
         User e = MustCreate(c, by_email);
         std::vector<User> expected = {a, b, e};
         std::sort(expected.begin(), expected.end(),
                   [](const User& x, const User& y) { return x.username < y.username; });

         Outcome<std::vector<User>> all = c.SearchUsers(kReaderToken, base, 0);
         ASSERT_TRUE(all.ok()) << all.status.message;
         EXPECT_EQ(*all.value, expected);
         Outcome<std::vector<User>> shouting = c.SearchUsers(kReaderToken, upper, 0);
         ASSERT_TRUE(shouting.ok()) << shouting.status.message;
         EXPECT_EQ(*shouting.value, expected);
         Outcome<std::vector<User>> two = c.SearchUsers(kReaderToken, base, 2);
         ASSERT_TRUE(two.ok()) << two.status.message;
         EXPECT_EQ(*two.value, std::vector<User>(expected.begin(), expected.begin() + 2));
         Outcome<std::vector<User>> one = c.SearchUsers(kAdminToken, base + "a", 0);
         ASSERT_TRUE(one.ok()) << one.status.message;
         EXPECT_EQ(*one.value, std::vector<User>{a});
         Outcome<std::vector<User>> by_mail = c.SearchUsers(kReaderToken, upper + "q@", 0);
         ASSERT_TRUE(by_mail.ok()) << by_mail.status.message;
         EXPECT_EQ(*by_mail.value, std::vector<User>{e});
         // No match; wildcards are literal characters.
         for (const std::string& none : {base + "zz_none", std::string("srch%"),
                                         "_" + base.substr(1), base.substr(0, 4) + "\\"}) {
           Outcome<std::vector<User>> out = c.SearchUsers(kReaderToken, none, 0);
           ASSERT_TRUE(out.ok()) << none << ": " << out.status.message;
           EXPECT_TRUE(out.value->empty()) << none;
         }
         ExpectCode(c.SearchUsers(kReaderToken, "", 0), StatusCode::kInvalidArgument, "prefix");
         ExpectCode(c.SearchUsers(kReaderToken, std::string(255, 'a'), 0),
                    StatusCode::kInvalidArgument, "prefix");
         ExpectCode(c.SearchUsers(kReaderToken, "a b", 0), StatusCode::kInvalidArgument, "prefix");
         ExpectCode(c.SearchUsers(kReaderToken, base, 101), StatusCode::kInvalidArgument, "limit");
         ExpectCode(c.SearchUsers("", base, 0), StatusCode::kUnauthenticated);
         ExpectCode(c.SearchUsers("wrong-token", "", 0), StatusCode::kUnauthenticated);
       }},
  };
  return scenarios;
}

// One record through every face: created over SOAP, read over gRPC, updated
// over REST, deleted over Thrift, with the cache entry `cached` reads
// checked at every step.
void RunCrossProtocolFlow(ProtocolClient& soap, ProtocolClient& grpc, ProtocolClient& rest,
                          ProtocolClient& thrift, const CachedEntry& cached,
                          std::chrono::milliseconds stale_allowance) {
  // Reads `read` until `current` holds of it or the allowance has passed.
  const auto until_current = [stale_allowance](const auto& read, const auto& current) {
    const auto end = std::chrono::steady_clock::now() + stale_allowance;
    auto out = read();
    while (!current(out) && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      out = read();
    }
    return out;
  };
  User created = MustCreate(soap, Draft(Unique("cross"), "Crossing Faces ✓"));
  ASSERT_GT(created.id, 0);
  ASSERT_TRUE(cached(created.id).has_value());
  EXPECT_EQ(cached(created.id)->rfind("U|1|", 0), 0u);

  Outcome<User> read = grpc.GetUser(kReaderToken, created.id);
  ASSERT_TRUE(read.ok()) << read.status.message;
  EXPECT_EQ(*read.value, created);

  Outcome<User> updated = rest.UpdateUser(
      kAdminToken, created.id, UserPatch{.full_name = "Updated over REST", .expected_version = 1});
  ASSERT_TRUE(updated.ok()) << updated.status.message;
  EXPECT_EQ(updated.value->version, 2);
  EXPECT_EQ(cached(created.id)->rfind("U|2|", 0), 0u);
  Outcome<User> reread =
      until_current([&] { return thrift.GetUser(kReaderToken, created.id); },
                    [&](const Outcome<User>& r) { return r.ok() && *r.value == *updated.value; });
  ASSERT_TRUE(reread.ok());
  EXPECT_EQ(*reread.value, *updated.value);

  EXPECT_TRUE(thrift.DeleteUser(kAdminToken, created.id).ok());
  EXPECT_EQ(cached(created.id), "D|2|");
  for (ProtocolClient* c : {&soap, &grpc, &rest, &thrift}) {
    ExpectCode(until_current(
                   [&] { return c->GetUser(kReaderToken, created.id); },
                   [](const Outcome<User>& r) { return r.status.code == StatusCode::kNotFound; }),
               StatusCode::kNotFound);
  }
}

}  // namespace polycrud::testing
