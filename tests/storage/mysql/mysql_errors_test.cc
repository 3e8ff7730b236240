// How MySQL/MariaDB error codes become Statuses and what they say about the
// connection (storage/mysql/mysql_errors.h); no server needed.
#include "storage/mysql/mysql_errors.h"

#include <gtest/gtest.h>

namespace polycrud {
namespace {

TEST(MysqlErrorsTest, DuplicateKeysNameTheFieldAndNothingElse) {
  Status username =
      StatusFromMysqlError(1062, "23000", "Duplicate entry 'a' for key 'uk_users_username'");
  EXPECT_EQ(username.code(), StatusCode::kConflict);
  EXPECT_EQ(username.message(), "username already exists");
  Status email = StatusFromMysqlError(
      1062, "23000",
      "Duplicate entry 'for key 'uk_users_username'' for key 'users.uk_users_email'");
  EXPECT_EQ(email.message(), "email already exists");
}

TEST(MysqlErrorsTest, AGaleraNodeOutsideThePrimaryComponentIsUnavailableAndItsConnectionDropped) {
  Status status =
      StatusFromMysqlError(1047, "08S01", "WSREP has not yet prepared node for application use");
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "database unavailable");
  EXPECT_TRUE(IsMysqlConnectionError(1047));
  EXPECT_TRUE(IsMysqlConnectionPoisoned(1047));
  EXPECT_TRUE(MayBeGaleraRefusal(1047));
  EXPECT_TRUE(MayBeGaleraRefusal(1205));
  EXPECT_FALSE(MayBeGaleraRefusal(1213));
}

TEST(MysqlErrorsTest, BusyErrorsAreRetryableAndLeaveTheSessionUsable) {
  for (const int code : {1205, 1213, 1969}) {
    Status status = StatusFromMysqlError(code, "HY000", "server text");
    EXPECT_EQ(status.code(), StatusCode::kResourceExhausted) << code;
    EXPECT_EQ(status.message().find("server text"), std::string::npos) << code;
    EXPECT_FALSE(IsMysqlConnectionPoisoned(code)) << code;
  }
}

TEST(MysqlErrorsTest, ClientSideErrorsPoisonTheConnection) {
  for (const int code : {0, 2006, 2013, 2014}) EXPECT_TRUE(IsMysqlConnectionPoisoned(code)) << code;
  EXPECT_FALSE(IsMysqlConnectionPoisoned(1146));
  EXPECT_EQ(StatusFromMysqlError(1146, "42S02", "Table doesn't exist").code(),
            StatusCode::kInternal);
}

}  // namespace
}  // namespace polycrud
