// MysqlConnection over TLS to a private MariaDB that serves TLS only
// (require_secure_transport; certificates from deploy/local/tls.sh): the
// session is encrypted, a client without TLS or trusting another CA is
// refused, and the store works over it.
#include <cppconn/connection.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "storage/mysql/mysql_connection_pool.h"
#include "storage/mysql/mysql_user_store.h"
#include "tests/storage/mysql/mysql_test_options.h"
#include "tests/support/server_process.h"
#include "tests/support/settings.h"
#include "tests/support/stack.h"

namespace polycrud {
namespace {

using testing::Certificates;

MysqlOptions Options(int port) {
  MysqlOptions options = testing::TestMysqlOptions(port);
  options.pool_size = 2;
  return options;
}

std::string SessionStatus(MysqlConnection& connection, const std::string& name) {
  std::unique_ptr<sql::Statement> statement(connection.raw().createStatement());
  std::unique_ptr<sql::ResultSet> rows(
      statement->executeQuery("SHOW SESSION STATUS LIKE '" + name + "'"));
  return rows->next() ? std::string(rows->getString(2)) : "";
}

class MysqlTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    mariadb_ = new testing::MariadbInstance("mariadb-tls", Certificates().dir);
  }
  static void TearDownTestSuite() {
    delete mariadb_;
    mariadb_ = nullptr;
  }
  static testing::MariadbInstance* mariadb_;
};
testing::MariadbInstance* MysqlTlsTest::mariadb_ = nullptr;

TEST_F(MysqlTlsTest, ASessionWithTheCaIsEncryptedAndVerified) {
  MysqlOptions options = Options(mariadb_->port());
  options.tls_ca = Certificates().ca();
  StatusOr<std::unique_ptr<MysqlConnection>> connection = MysqlConnection::Open(options);
  ASSERT_TRUE(connection.ok()) << connection.status().ToString();
  const std::string version = SessionStatus(**connection, "Ssl_version");
  EXPECT_TRUE(version == "TLSv1.2" || version == "TLSv1.3") << version;
  EXPECT_FALSE(SessionStatus(**connection, "Ssl_cipher").empty());
}

TEST_F(MysqlTlsTest, ACleartextClientIsRefused) {
  StatusOr<std::unique_ptr<MysqlConnection>> connection =
      MysqlConnection::Open(Options(mariadb_->port()));
  EXPECT_FALSE(connection.ok());
}

TEST_F(MysqlTlsTest, AServerCertificateOfAnotherCaIsRefused) {
  MysqlOptions options = Options(mariadb_->port());
  options.tls_ca = Certificates("other").ca();
  StatusOr<std::unique_ptr<MysqlConnection>> connection = MysqlConnection::Open(options);
  EXPECT_FALSE(connection.ok());
}

TEST_F(MysqlTlsTest, TheStoreMigratesAndWritesOverTls) {
  MysqlOptions options = Options(mariadb_->port());
  options.tls_ca = Certificates().ca();
  MysqlUserStore store(options);
  ASSERT_TRUE(store.Migrate().ok());
  StatusOr<User> created = store.Insert(
      UserDraft{.username = testing::UniqueName("tls"), .email = "t@example.com", .full_name = "T"},
      1'700'000'000'000);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  StatusOr<std::optional<User>> read = store.FindById(created->id);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->username, created->username);
}

}  // namespace
}  // namespace polycrud
