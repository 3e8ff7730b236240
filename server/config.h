// The settings of polycrud-server: every flag (each with its environment
// variable), a configuration file for what neither sets (--config, keys
// named as the long flags: "mysql-host = db1"), secrets read from files,
// and the checks that need no server (--check-config runs exactly these).
// Precedence: flag, then environment, then the file, then the default.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/sha256_token_verifier.h"
#include "server/change_events.h"
#include "server/face.h"
#include "server/services.h"
#include "storage/mysql/mysql_user_store.h"
#include "transport/tls/tls.h"

namespace polycrud::server {

struct Config {
  std::string log_level = "info";
  std::string log_format = "text";  // text or json (server/log_format.h)
  std::string bind_address = "127.0.0.1";
  std::vector<std::string> protocols;  // empty: every face this binary has
  // Statements end within 3 s (below the 5 s read timeout, which would
  // leave a write's outcome unknown).
  polycrud::MysqlOptions mysql{
      .user = "polycrud", .database = "polycrud", .statement_timeout_ms = 3000};
  int mysql_wait_s = 30;
  ServicesOptions services{.near = {.entries = 0}};
  int cache_ttl_s = 3600;
  int redis_timeout_ms = 500;
  int near_ttl_ms = 1000;
  int max_connections = 0;            // 0: what the descriptor limit leaves
  int drain_ms = 0;                   // readiness 503 for this long before stopping
  std::string shared_cache = "auto";  // auto: on with --redis-cluster
  int near_entries = -1;              // -1: 100,000 with change events, else off
  ChangeEventsOptions events{.amqp = {.user = "polycrud"}};
  int events_retention_s = 86400;
  bool events_relay = true;
  double rate_limit_per_token = 0;  // requests/s; 0: off
  double rate_limit_burst = 0;      // 0: one second's worth
  std::vector<std::string> admin_hashes;
  std::vector<std::string> reader_hashes;
  polycrud::tls::TlsFiles tls;

  // How the settings arrive beyond flags and the environment.
  std::string config_file;  // --config: keys for what neither sets
  // Secrets read from files (the first line), instead of a flag or the
  // environment.
  std::string mysql_password_file;
  std::string redis_password_file;
  std::string amqp_password_file;
  std::string admin_token_sha256_file;   // one hash per line
  std::string reader_token_sha256_file;  // one hash per line
  bool check_config = false;             // --check-config: validate, then exit
  bool migrate_only = false;             // --migrate-only: apply the migrations, then exit
};

// Adds every option of the server and of its faces to `app`, bound to `c`.
void AddOptions(CLI::App& app, Config& c, const FaceList& faces);

// After app.parse(): the configuration file's keys for every option that
// neither a flag nor the environment set, then the secret files. An error
// names the key or file and what is wrong with it.
std::optional<std::string> CompleteConfig(CLI::App& app, Config& c);

// The settings in force, as configuration-file lines ("key = value", every
// option, defaults too), passwords hidden: what --check-config prints.
std::string EffectiveSettings(const CLI::App& app);

// What can be checked without a server: tokens, protocols, the Redis Cluster
// seeds, combinations of options. Fills `selected` with the faces to start,
// in MakeFaces() order, and `tokens` with the verifier of the token hashes,
// and settles the settings derived from others.
std::optional<std::string> ValidateConfig(Config& c, const FaceList& faces,
                                          std::vector<Face*>& selected,
                                          std::optional<Sha256TokenVerifier>& tokens);

}  // namespace polycrud::server
