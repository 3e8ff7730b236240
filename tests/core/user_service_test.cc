// UserService: authentication and roles, the order of checks, the mapping of
// store errors to core codes, and the plain CRUD and paging semantics.
#include "core/user_service.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/sha256_token_verifier.h"
#include "tests/core/user_service_fixture.h"

namespace polycrud::testing {
namespace {

class UserServiceTest : public UserServiceFixture {};

// ---------------------------------------------------------------- auth

// An AuditLog that keeps every record, with its strings copied.
class RecordingAuditLog final : public AuditLog {
 public:
  struct Entry {
    std::string token_id;
    Operation operation;
    std::int64_t user_id;
    StatusCode result;
    std::string request_id;
  };
  void Record(const AuditRecord& r) override {
    std::lock_guard lock(mu_);
    entries_.push_back(
        {std::string(r.token_id), r.operation, r.user_id, r.result, std::string(r.request_id)});
  }
  std::vector<Entry> entries() const {
    std::lock_guard lock(mu_);
    return entries_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
};

TEST_F(UserServiceTest, EveryAdminWriteAttemptIsAuditedWithATokenIdNeverTheToken) {
  RecordingAuditLog audit;
  Restart(UserServiceOptions{.audit = &audit});
  const User user = *service().CreateUser(Caller(kAdminToken, "req-1"), MakeDraft(1));
  ASSERT_TRUE(service().GetUser(kReaderToken, user.id).ok());  // reads are not audited
  EXPECT_EQ(service()
                .UpdateUser(Caller(kAdminToken, "req-2"), user.id,
                            {.full_name = "B", .expected_version = 7})
                .status()
                .code(),
            StatusCode::kConflict);
  EXPECT_EQ(service().DeleteUser(Caller(kReaderToken, "req-3"), user.id).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(service().CreateUser(Caller("", "req-4"), MakeDraft(2)).status().code(),
            StatusCode::kUnauthenticated);
  ASSERT_TRUE(service().DeleteUser(Caller(kAdminToken, "req-5"), user.id).ok());

  const std::vector<RecordingAuditLog::Entry> entries = audit.entries();
  ASSERT_EQ(entries.size(), 5u);
  const std::string admin_id = Sha256TokenVerifier::HashHex(kAdminToken).substr(0, 12);
  const std::string reader_id = Sha256TokenVerifier::HashHex(kReaderToken).substr(0, 12);
  const struct {
    std::string token_id;
    Operation operation;
    std::int64_t user_id;
    StatusCode result;
    std::string request_id;
  } want[] = {
      {admin_id, Operation::kCreateUser, user.id, StatusCode::kOk, "req-1"},
      {admin_id, Operation::kUpdateUser, user.id, StatusCode::kConflict, "req-2"},
      {reader_id, Operation::kDeleteUser, user.id, StatusCode::kPermissionDenied, "req-3"},
      {"-", Operation::kCreateUser, 0, StatusCode::kUnauthenticated, "req-4"},
      {admin_id, Operation::kDeleteUser, user.id, StatusCode::kOk, "req-5"},
  };
  for (std::size_t i = 0; i < entries.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(entries[i].token_id, want[i].token_id);
    EXPECT_EQ(entries[i].operation, want[i].operation);
    EXPECT_EQ(entries[i].user_id, want[i].user_id);
    EXPECT_EQ(entries[i].result, want[i].result);
    EXPECT_EQ(entries[i].request_id, want[i].request_id);
    EXPECT_EQ(entries[i].token_id.find(kAdminToken), std::string::npos);
  }
}

TEST_F(UserServiceTest, PingNeedsNoTokenAndDoesNoIo) {
  EXPECT_EQ(service().Ping(), "polycrud 0.1.0");
  EXPECT_EQ(cache_.data_calls() + cache_.ping_calls(), 0);
  EXPECT_EQ(store_.ping_calls() + store_.find_by_id_calls() + store_.insert_calls(), 0);
}

TEST_F(UserServiceTest, PingNamesTheConfiguredServer) {
  Restart(UserServiceOptions{.server_name = "directory", .server_version = "9.9.9"});
  EXPECT_EQ(service().Ping(), "directory 9.9.9");
}

TEST_F(UserServiceTest, ReaderMayGetBatchGetAndList) {
  const User user = Create(1);
  StatusOr<User> got = service().GetUser(kReaderToken, user.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, user);

  const std::vector<std::int64_t> ids = {user.id};
  StatusOr<std::vector<User>> batch = service().BatchGetUsers(kReaderToken, ids);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(*batch, std::vector<User>{user});

  StatusOr<UserPage> page = service().ListUsers(kReaderToken, 0, 10);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->users, std::vector<User>{user});

  StatusOr<std::vector<User>> found = service().SearchUsers(kReaderToken, user.username, 0);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, std::vector<User>{user});
}

TEST_F(UserServiceTest, SearchIsByUsernameOrEmailPrefixOrderedByUsernameWithDefaultLimit20) {
  std::vector<User> created;
  for (int i = 0; i < 25; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "srch%02d", 24 - i);  // created in reverse name order
    created.push_back(*service().CreateUser(
        kAdminToken,
        {.username = name, .email = std::string("m") + name + "@example.com", .full_name = "S"}));
  }
  StatusOr<std::vector<User>> found = service().SearchUsers(kReaderToken, "SRCH", 0);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), 20u);  // the default limit
  for (std::size_t i = 0; i < found->size(); ++i) EXPECT_EQ((*found)[i], created[24 - i]);
  StatusOr<std::vector<User>> by_email = service().SearchUsers(kReaderToken, "MSRCH07@", 5);
  ASSERT_TRUE(by_email.ok());
  EXPECT_EQ(*by_email, std::vector<User>{created[24 - 7]});
  EXPECT_TRUE(service().SearchUsers(kReaderToken, "nobody", 100)->empty());
  EXPECT_EQ(service().SearchUsers(kReaderToken, "", 10).status().field(), "prefix");
  EXPECT_EQ(service().SearchUsers(kReaderToken, "s", 101).status().field(), "limit");
  EXPECT_EQ(service().SearchUsers("", "s", 10).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(UserServiceTest, ReaderMayNotWrite) {
  const User user = Create(1);
  const int inserts = store_.insert_calls();

  StatusOr<User> created = service().CreateUser(kReaderToken, MakeDraft(2));
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), StatusCode::kPermissionDenied);

  StatusOr<User> updated = service().UpdateUser(kReaderToken, user.id, {.full_name = "Eve"});
  ASSERT_FALSE(updated.ok());
  EXPECT_EQ(updated.status().code(), StatusCode::kPermissionDenied);

  EXPECT_EQ(service().DeleteUser(kReaderToken, user.id).code(), StatusCode::kPermissionDenied);

  EXPECT_EQ(store_.insert_calls(), inserts);
  EXPECT_EQ(store_.update_calls(), 0);
  EXPECT_EQ(store_.delete_calls(), 0);
  EXPECT_EQ(store_.Peek(user.id), user);
}

TEST_F(UserServiceTest, MissingOrUnknownTokenIsUnauthenticated) {
  const User user = Create(1);
  const std::vector<std::int64_t> ids = {user.id};
  for (const std::string_view token : {std::string_view(), std::string_view("not-a-token")}) {
    EXPECT_EQ(service().CreateUser(token, MakeDraft(2)).status().code(),
              StatusCode::kUnauthenticated);
    EXPECT_EQ(service().GetUser(token, user.id).status().code(), StatusCode::kUnauthenticated);
    EXPECT_EQ(service().BatchGetUsers(token, ids).status().code(), StatusCode::kUnauthenticated);
    EXPECT_EQ(service().UpdateUser(token, user.id, {.full_name = "X"}).status().code(),
              StatusCode::kUnauthenticated);
    EXPECT_EQ(service().DeleteUser(token, user.id).code(), StatusCode::kUnauthenticated);
    EXPECT_EQ(service().ListUsers(token, 0, 10).status().code(), StatusCode::kUnauthenticated);
  }
  EXPECT_EQ(store_.Peek(user.id), user);
  EXPECT_EQ(store_.size(), 1u);
}

TEST_F(UserServiceTest, AuthenticationIsCheckedBeforeValidation) {
  const std::vector<std::int64_t> no_ids;
  const UserDraft bad_draft{.username = "X", .email = "nope", .full_name = ""};
  EXPECT_EQ(service().CreateUser("", bad_draft).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(service().GetUser("", -1).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(service().BatchGetUsers("", no_ids).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(service().UpdateUser("", 0, UserPatch{}).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(service().DeleteUser("", 0).code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(service().ListUsers("", -1, -1).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(UserServiceTest, RoleIsCheckedBeforeValidation) {
  const UserDraft bad_draft{.username = "X", .email = "nope", .full_name = ""};
  EXPECT_EQ(service().CreateUser(kReaderToken, bad_draft).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(service().UpdateUser(kReaderToken, 0, UserPatch{}).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(service().DeleteUser(kReaderToken, -4).code(), StatusCode::kPermissionDenied);
}

TEST_F(UserServiceTest, InvalidInputNamesTheFieldAndTouchesNoStorage) {
  const std::vector<std::int64_t> too_many(1001, 1);
  const std::vector<std::pair<Status, std::string>> cases = {
      {service()
           .CreateUser(kAdminToken, {.username = "ab", .email = "a@b", .full_name = "A"})
           .status(),
       "username"},
      {service().GetUser(kAdminToken, 0).status(), "id"},
      {service().BatchGetUsers(kAdminToken, too_many).status(), "ids"},
      {service().UpdateUser(kAdminToken, -1, {.full_name = "A"}).status(), "id"},
      {service().UpdateUser(kAdminToken, 1, UserPatch{}).status(), "patch"},
      {service().UpdateUser(kAdminToken, 1, {.full_name = "A", .expected_version = -2}).status(),
       "expected_version"},
      {service().DeleteUser(kAdminToken, 0), "id"},
      {service().ListUsers(kAdminToken, 0, 1001).status(), "limit"},
      {service().ListUsers(kAdminToken, -1, 10).status(), "after_id"},
  };
  for (const auto& [status, field] : cases) {
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << field;
    EXPECT_EQ(status.field(), field);
  }
  EXPECT_EQ(store_.insert_calls() + store_.find_by_id_calls() + store_.find_by_ids_calls() +
                store_.update_calls() + store_.delete_calls() + store_.list_after_calls(),
            0);
  EXPECT_EQ(cache_.data_calls(), 0);
}

TEST_F(UserServiceTest, CallsAfterBeginShutdownAreUnavailable) {
  const User user = Create(1);
  service().BeginShutdown();
  const std::vector<std::int64_t> ids = {user.id};
  const std::vector<Status> statuses = {
      service().CreateUser(kAdminToken, MakeDraft(2)).status(),
      service().GetUser(kAdminToken, user.id).status(),
      service().BatchGetUsers(kReaderToken, ids).status(),
      service().UpdateUser(kAdminToken, user.id, {.full_name = "X"}).status(),
      service().DeleteUser(kAdminToken, user.id),
      service().ListUsers(kAdminToken, 0, 10).status(),
      // Even an unauthenticated caller learns only that the server is going away.
      service().GetUser("", user.id).status(),
  };
  for (const Status& status : statuses) {
    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
    EXPECT_GT(status.retry_after_ms(), 0);
  }
  EXPECT_EQ(service().Ping(), "polycrud 0.1.0");
  EXPECT_EQ(store_.Peek(user.id), user);
  EXPECT_EQ(store_.size(), 1u);
}

// ---------------------------------------------------------------- CRUD semantics

TEST_F(UserServiceTest, CreateAssignsIdVersionOneAndServerTimestamps) {
  StatusOr<User> user = service().CreateUser(kAdminToken, MakeDraft(7));
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  EXPECT_GT(user->id, 0);
  EXPECT_EQ(user->username, "user7");
  EXPECT_EQ(user->email, "user7@example.com");
  EXPECT_EQ(user->full_name, "User Number 7");
  EXPECT_EQ(user->version, 1);
  EXPECT_EQ(user->created_at_ms, FakeClock::kStartNowMs);
  EXPECT_EQ(user->updated_at_ms, FakeClock::kStartNowMs);
  EXPECT_EQ(store_.Peek(user->id), *user);
}

TEST_F(UserServiceTest, FullNameRoundTripsByteExact) {
  const std::string name = "'; DROP TABLE users; -- \xF0\x9F\x98\x80 Zo\xC3\xAB \"q\"";
  StatusOr<User> created =
      service().CreateUser(kAdminToken, {.username = "bobby", .email = "b@x", .full_name = name});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  cache_.EvictAll();
  StatusOr<User> got = service().GetUser(kReaderToken, created->id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->full_name, name);
}

TEST_F(UserServiceTest, UpdateBumpsVersionAndKeepsUnsetFields) {
  const User user = Create(1);
  clock_.AdvanceMs(1500);
  StatusOr<User> updated = service().UpdateUser(kAdminToken, user.id, {.full_name = "Ada L."});
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version, 2);
  EXPECT_EQ(updated->full_name, "Ada L.");
  EXPECT_EQ(updated->email, user.email);
  EXPECT_EQ(updated->username, user.username);
  EXPECT_EQ(updated->created_at_ms, user.created_at_ms);
  EXPECT_EQ(updated->updated_at_ms, user.created_at_ms + 1500);

  StatusOr<User> again = service().UpdateUser(kAdminToken, user.id, {.email = "new@example.com"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->version, 3);
  EXPECT_EQ(again->full_name, "Ada L.");
  EXPECT_EQ(again->email, "new@example.com");
}

TEST_F(UserServiceTest, UpdateWithMatchingExpectedVersionSucceeds) {
  const User user = Create(1);
  StatusOr<User> updated =
      service().UpdateUser(kAdminToken, user.id, {.full_name = "B", .expected_version = 1});
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->version, 2);
}

TEST_F(UserServiceTest, DeletedUserIsGone) {
  const User user = Create(1);
  ASSERT_TRUE(service().DeleteUser(kAdminToken, user.id).ok());
  EXPECT_FALSE(store_.Peek(user.id).has_value());
  EXPECT_EQ(service().GetUser(kAdminToken, user.id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service().DeleteUser(kAdminToken, user.id).code(), StatusCode::kNotFound);
}

TEST_F(UserServiceTest, IdsAreNeverReused) {
  const User first = Create(1);
  ASSERT_TRUE(service().DeleteUser(kAdminToken, first.id).ok());
  // The same username and email are free again, but the id is not.
  const User second = Create(1);
  EXPECT_GT(second.id, first.id);
  EXPECT_EQ(second.version, 1);
}

// ---------------------------------------------------------------- error mapping

TEST_F(UserServiceTest, DuplicateUsernameIsConflictDuplicate) {
  Create(1);
  UserDraft draft = MakeDraft(2);
  draft.username = "user1";
  StatusOr<User> dup = service().CreateUser(kAdminToken, draft);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kConflict);
  EXPECT_EQ(dup.status().conflict_kind(), ConflictKind::kDuplicate);
  EXPECT_EQ(store_.size(), 1u);
}

TEST_F(UserServiceTest, DuplicateEmailIgnoringCaseIsConflictDuplicate) {
  Create(1);
  UserDraft draft = MakeDraft(2);
  draft.email = "USER1@Example.COM";
  StatusOr<User> dup = service().CreateUser(kAdminToken, draft);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kConflict);
  EXPECT_EQ(dup.status().conflict_kind(), ConflictKind::kDuplicate);
}

TEST_F(UserServiceTest, UpdateToATakenEmailIsConflictDuplicate) {
  Create(1);
  const User second = Create(2);
  StatusOr<User> dup = service().UpdateUser(kAdminToken, second.id, {.email = "User1@example.com"});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kConflict);
  EXPECT_EQ(dup.status().conflict_kind(), ConflictKind::kDuplicate);
  EXPECT_EQ(store_.Peek(second.id), second);
  // Changing only the case of one's own address is no conflict.
  StatusOr<User> recased =
      service().UpdateUser(kAdminToken, second.id, {.email = "USER2@example.com"});
  EXPECT_TRUE(recased.ok()) << recased.status().ToString();
}

TEST_F(UserServiceTest, StaleExpectedVersionIsConflictVersionMismatch) {
  const User user = Create(1);
  ASSERT_TRUE(service().UpdateUser(kAdminToken, user.id, {.full_name = "B"}).ok());
  StatusOr<User> stale =
      service().UpdateUser(kAdminToken, user.id, {.full_name = "C", .expected_version = 1});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kConflict);
  EXPECT_EQ(stale.status().conflict_kind(), ConflictKind::kVersionMismatch);
  const std::optional<User> row = store_.Peek(user.id);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->version, 2);
  EXPECT_EQ(row->full_name, "B");
  // The cache keeps the committed version too.
  EXPECT_EQ(cache_.Peek(user.id).version, 2);
}

TEST_F(UserServiceTest, MissingUserIsNotFound) {
  EXPECT_EQ(service().GetUser(kAdminToken, 404).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service().UpdateUser(kAdminToken, 404, {.full_name = "X"}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(service().DeleteUser(kAdminToken, 404).code(), StatusCode::kNotFound);
  // A failed write leaves no trace in the cache.
  EXPECT_EQ(cache_.put_tombstone_calls(), 0);
  EXPECT_EQ(cache_.put_if_newer_calls(), 0);
}

TEST_F(UserServiceTest, StoreUnavailablePassesThroughForWrites) {
  const User user = Create(1);
  store_.SetUnavailable(true);
  const Status create = service().CreateUser(kAdminToken, MakeDraft(2)).status();
  const Status update = service().UpdateUser(kAdminToken, user.id, {.full_name = "X"}).status();
  const Status remove = service().DeleteUser(kAdminToken, user.id);
  for (const Status& status : {create, update, remove}) {
    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  }
}

TEST_F(UserServiceTest, ReachabilityFollowsTheDependencies) {
  EXPECT_TRUE(service().StoreReachable());
  EXPECT_TRUE(service().CacheReachable());
  store_.SetUnavailable(true);
  cache_.SetUnavailable(true);
  EXPECT_FALSE(service().StoreReachable());
  EXPECT_FALSE(service().CacheReachable());
}

// ---------------------------------------------------------------- paging

TEST_F(UserServiceTest, ListPagesInIdOrderWithKeyset) {
  for (int n = 1; n <= 5; ++n) Create(n);
  ASSERT_TRUE(service().DeleteUser(kAdminToken, 3).ok());

  StatusOr<UserPage> first = service().ListUsers(kReaderToken, 0, 2);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->users.size(), 2u);
  EXPECT_EQ(first->users[0].id, 1);
  EXPECT_EQ(first->users[1].id, 2);
  EXPECT_EQ(first->next_after_id, 2);

  StatusOr<UserPage> second = service().ListUsers(kReaderToken, first->next_after_id, 2);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->users.size(), 2u);
  EXPECT_EQ(second->users[0].id, 4);
  EXPECT_EQ(second->users[1].id, 5);
  EXPECT_EQ(second->next_after_id, 0) << "an exactly full last page has no successor";
}

TEST_F(UserServiceTest, ListSignalsAFurtherPage) {
  for (int n = 1; n <= 3; ++n) Create(n);
  StatusOr<UserPage> page = service().ListUsers(kReaderToken, 1, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->users.size(), 1u);
  EXPECT_EQ(page->users[0].id, 2);
  EXPECT_EQ(page->next_after_id, 2);
}

TEST_F(UserServiceTest, ListLimitZeroMeansTheDefaultPageSize) {
  for (int n = 1; n <= kDefaultPageLimit + 1; ++n) Create(n);
  StatusOr<UserPage> page = service().ListUsers(kReaderToken, 0, 0);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->users.size(), static_cast<std::size_t>(kDefaultPageLimit));
  EXPECT_EQ(page->next_after_id, kDefaultPageLimit);
}

TEST_F(UserServiceTest, ListPastTheEndIsEmpty) {
  Create(1);
  StatusOr<UserPage> page = service().ListUsers(kReaderToken, 1, 1000);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->users.empty());
  EXPECT_EQ(page->next_after_id, 0);
}

TEST_F(UserServiceTest, ListReadsTheStoreNotTheCache) {
  Create(1);
  const int cache_calls = cache_.data_calls();
  StatusOr<UserPage> page = service().ListUsers(kReaderToken, 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(store_.list_after_calls(), 1);
  EXPECT_EQ(cache_.data_calls(), cache_calls);
}

TEST_F(UserServiceTest, SearchReadsTheStoreNeverTheCache) {
  const User user = Create(1);
  const int cache_calls = cache_.data_calls();
  StatusOr<std::vector<User>> found = service().SearchUsers(kReaderToken, "user", 10);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, std::vector<User>{user});
  EXPECT_EQ(cache_.data_calls(), cache_calls);
  store_.SetUnavailable(true);
  EXPECT_EQ(service().SearchUsers(kReaderToken, "user", 10).status().code(),
            StatusCode::kUnavailable);
}

TEST_F(UserServiceTest, ListWithStoreDownIsUnavailable) {
  Create(1);
  store_.SetUnavailable(true);
  EXPECT_EQ(service().ListUsers(kReaderToken, 0, 10).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace polycrud::testing
