// polycrud-server's settings as an operator gives them (server/config.h):
// the configuration file with flags and the environment overriding it,
// secrets read from files and never printed, bad keys and values named,
// --check-config's verdict and exit status, and --migrate-only applying the
// migrations to a private MariaDB and exiting without serving.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/support/settings.h"
#include "tests/support/stack.h"

namespace polycrud::testing {
namespace {

constexpr char kHash[] = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";

struct Outcome {
  int status = -1;
  std::string output;  // stdout and stderr
};

// Runs polycrud-server with `args` and only the environment `env` (plus
// PATH), as a service manager would.
Outcome Server(const std::string& args, const std::string& env = "") {
  const std::string command = "env -i PATH=/usr/bin:/bin " + env + " '" +
                              Setting("POLYCRUD_SERVER_BINARY") + "' " + args + " 2>&1";
  Outcome run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buf{};
  while (const std::size_t n = fread(buf.data(), 1, buf.size(), pipe)) {
    run.output.append(buf.data(), n);
  }
  const int status = pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// A file of `content` in the test's scratch folder; its path.
std::string File(const std::string& name, const std::string& content) {
  const std::string dir = Setting("POLYCRUD_TEST_SCRATCH") + "/server-config";
  Shell("mkdir -p '" + dir + "'");
  const std::string path = dir + "/" + name;
  std::ofstream(path) << content;
  return path;
}

const std::string kToken = std::string("POLYCRUD_ADMIN_TOKEN_SHA256=") + kHash;

TEST(ServerConfigTest, FileKeysApplyAndTheEnvironmentAndFlagsOverrideThem) {
  const std::string conf = File("server.conf",
                                "# polycrud-server\n"
                                "log-level = warn\n"
                                "mysql-host = db1\n"
                                "mysql_port = 3307\n"
                                "protocols = thrift,rest\n"
                                "near-cache-ttl-ms = 2500\n");
  const Outcome run = Server("--check-config --config " + conf + " --near-cache-ttl-ms 700",
                             kToken + " POLYCRUD_MYSQL_HOST=envhost");
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("configuration OK (" + conf + ")"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("log-level = \"warn\"\n"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("mysql-port = 3307\n"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("mysql-host = \"envhost\"\n"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("near-cache-ttl-ms = 700\n"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("protocols = [\"thrift\", \"rest\"]\n"), std::string::npos)
      << run.output;
}

TEST(ServerConfigTest, TheConfigurationFileMayBeNamedInTheEnvironment) {
  const std::string conf = File("env.conf", "mysql-database = fromfile\n");
  const Outcome run = Server("--check-config", kToken + " POLYCRUD_CONFIG=" + conf);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("mysql-database = \"fromfile\"\n"), std::string::npos) << run.output;
}

TEST(ServerConfigTest, UnknownKeysBadValuesAndMissingFilesAreNamed) {
  struct Case {
    std::string conf;
    std::string expected;
  };
  const Case cases[] = {
      {"bogus-key = 1\n", "unknown key 'bogus-key'"},
      {"mysql-port = abc\n", "key 'mysql-port'"},
      {"mysql-statement-timeout-ms = 99999999\n", "not in range"},
      {"[mysql]\nhost = x\n", "is in a section"},
      {"mysql-host = a\nmysql-host = b\n", "key 'mysql-host'"},
      {"config = other.conf\n", "unknown key 'config'"},
  };
  for (const Case& c : cases) {
    const Outcome run = Server("--check-config --config " + File("bad.conf", c.conf), kToken);
    EXPECT_EQ(run.status, 2) << c.conf << run.output;
    EXPECT_NE(run.output.find(c.expected), std::string::npos) << c.conf << run.output;
    EXPECT_EQ(run.output.find("configuration OK"), std::string::npos) << run.output;
  }
  const Outcome missing = Server("--check-config --config /nonexistent/server.conf", kToken);
  EXPECT_EQ(missing.status, 2) << missing.output;
  EXPECT_NE(missing.output.find("/nonexistent/server.conf"), std::string::npos) << missing.output;
}

TEST(ServerConfigTest, SecretsAreReadFromFilesAndNeverPrinted) {
  const std::string password = File("mysql.password", "s3cret-from-file\n");
  const std::string hashes =
      File("admin.sha256", std::string("# the operators\n\n") + kHash + "\n");
  const Outcome run = Server("--check-config --mysql-password-file " + password +
                             " --admin-token-sha256-file " + hashes);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("mysql-password = (hidden)"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("s3cret"), std::string::npos) << run.output;

  const Outcome both =
      Server("--check-config --mysql-password-file " + password, kToken +
                                                                     " POLYCRUD_MYSQL_"
                                                                     "PASSWORD=x");
  EXPECT_EQ(both.status, 2) << both.output;
  EXPECT_NE(both.output.find("both set"), std::string::npos) << both.output;

  const Outcome unreadable = Server("--check-config --redis-password-file /nonexistent", kToken);
  EXPECT_EQ(unreadable.status, 2) << unreadable.output;
  EXPECT_NE(unreadable.output.find("--redis-password-file"), std::string::npos)
      << unreadable.output;

  const Outcome bad_hash =
      Server("--check-config --admin-token-sha256-file " + File("bad.sha256", "not-a-hash\n"));
  EXPECT_EQ(bad_hash.status, 2) << bad_hash.output;
  EXPECT_NE(bad_hash.output.find("bad token configuration"), std::string::npos) << bad_hash.output;
}

TEST(ServerConfigTest, NoTokenIsRefused) {
  const Outcome run = Server("--check-config");
  EXPECT_EQ(run.status, 2) << run.output;
  EXPECT_NE(run.output.find("no token configured"), std::string::npos) << run.output;
}

TEST(ServerConfigTest, MigrateOnlyAppliesTheMigrationsAndExits) {
  MariadbInstance mariadb("config-migrate-only");
  const std::string password = File("migrate.password", Setting("POLYCRUD_TEST_MYSQL_PASSWORD"));
  const Outcome run =
      Server("--migrate-only --mysql-port " + std::to_string(mariadb.port()) + " --mysql-user " +
                 Setting("POLYCRUD_TEST_MYSQL_USER") + " --mysql-database " +
                 Setting("POLYCRUD_TEST_MYSQL_DATABASE") + " --mysql-password-file " + password,
             kToken);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("schema migrations applied"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("listening"), std::string::npos) << run.output;
  EXPECT_EQ(MysqlQuery(mariadb.port(), "SELECT COUNT(*) FROM users"), "0\n");
  EXPECT_EQ(MysqlQuery(mariadb.port(), "SELECT COUNT(*) > 0 FROM schema_migrations"), "1\n");
}

}  // namespace
}  // namespace polycrud::testing
