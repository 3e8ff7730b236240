#include "server/config.h"

#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "cache/redis/redis_cluster_client.h"

namespace polycrud::server {
namespace {

// The first line of `path`, without its line end; nullopt if it cannot be
// read or is empty.
std::optional<std::string> FirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return std::nullopt;
  return line;
}

// Gives the option --`flag` the first line of `file` when a file is named,
// as if it had been set (so EffectiveSettings shows it is set); an error if
// it is also set otherwise, or the file cannot be read.
std::optional<std::string> ReadSecret(CLI::App& app, const std::string& file,
                                      const std::string& flag) {
  if (file.empty()) return std::nullopt;
  CLI::Option* option = app.get_option("--" + flag);
  if (option->count() > 0) {
    return "--" + flag + " and --" + flag + "-file are both set: choose one";
  }
  std::optional<std::string> line = FirstLine(file);
  if (!line.has_value()) return "--" + flag + "-file: cannot read a line from " + file;
  option->add_result(*line);
  option->run_callback();
  return std::nullopt;
}

// Adds the hashes of `file` (one per line; blank lines and # comments
// skipped) to the option --`flag`.
std::optional<std::string> ReadHashes(CLI::App& app, const std::string& file,
                                      const std::string& flag) {
  if (file.empty()) return std::nullopt;
  std::ifstream in(file);
  if (!in) return "--" + flag + "-file: cannot read " + file;
  CLI::Option* option = app.get_option("--" + flag);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    option->add_result(line);
  }
  option->run_callback();
  return std::nullopt;
}

// The configuration file's keys, for the options that neither a flag nor
// the environment set.
std::optional<std::string> ApplyConfigFile(CLI::App& app, const std::string& path) {
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigINI().from_file(path);
  } catch (const CLI::FileError& e) {
    return std::string("--config: ") + e.what();
  }
  std::set<std::string> seen;
  for (const CLI::ConfigItem& item : items) {
    std::string key = item.name;
    for (char& ch : key) {
      if (ch == '_') ch = '-';
    }
    if (!item.parents.empty()) {
      return "--config " + path + ": key '" + item.fullname() +
             "' is in a section; the file has none";
    }
    if (!seen.insert(key).second) return "--config " + path + ": key '" + key + "' is set twice";
    CLI::Option* option = app.get_option_no_throw("--" + key);
    if (option == nullptr || !option->get_configurable()) {
      return "--config " + path + ": unknown key '" + key + "' (keys are the long flags of --help)";
    }
    if (option->count() > 0) continue;  // a flag or the environment set it
    try {
      for (const std::string& input : item.inputs) option->add_result(input);
      option->run_callback();
    } catch (const CLI::Error& e) {
      return "--config " + path + ": key '" + key + "': " + e.what();
    }
  }
  return std::nullopt;
}

}  // namespace

void AddOptions(CLI::App& app, Config& c, const FaceList& faces) {
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error (SIGHUP reloads it)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->envname("POLYCRUD_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--log-format", c.log_format,
                 "text, or json: one JSON object a line (time, level, thread, logger, msg) for "
                 "journald and log shippers")
      ->envname("POLYCRUD_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--bind", c.bind_address, "Address the protocol faces listen on")
      ->envname("POLYCRUD_BIND")
      ->capture_default_str();
  std::string all;
  for (const auto& face : faces) all += (all.empty() ? "" : ",") + std::string(face->name());
  app.add_option("--protocols", c.protocols,
                 "Faces to serve, comma-separated (default: " + all + ")")
      ->envname("POLYCRUD_PROTOCOLS")
      ->delimiter(',');

  app.add_option("--mysql-host", c.mysql.host)
      ->envname("POLYCRUD_MYSQL_HOST")
      ->capture_default_str();
  app.add_option("--mysql-port", c.mysql.port)
      ->envname("POLYCRUD_MYSQL_PORT")
      ->capture_default_str();
  app.add_option("--mysql-user", c.mysql.user)
      ->envname("POLYCRUD_MYSQL_USER")
      ->capture_default_str();
  app.add_option("--mysql-password", c.mysql.password, "Prefer the environment variable")
      ->envname("POLYCRUD_MYSQL_PASSWORD");
  app.add_option("--mysql-database", c.mysql.database)
      ->envname("POLYCRUD_MYSQL_DATABASE")
      ->capture_default_str();
  app.add_option("--mysql-statement-timeout-ms", c.mysql.statement_timeout_ms,
                 "The server aborts a statement running longer (max_statement_time): "
                 "RESOURCE_EXHAUSTED, nothing written; 0: no limit")
      ->envname("POLYCRUD_MYSQL_STATEMENT_TIMEOUT_MS")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{3'600'000}))
      ->capture_default_str();
  app.add_option("--mysql-tls-ca", c.mysql.tls_ca,
                 "Connect to MariaDB over TLS, its certificate verified against this CA and "
                 "--mysql-host (a server without TLS is refused)")
      ->envname("POLYCRUD_MYSQL_TLS_CA");
  app.add_option("--mysql-tls-cert", c.mysql.tls_cert,
                 "Client certificate for MariaDB (users created REQUIRE X509)")
      ->envname("POLYCRUD_MYSQL_TLS_CERT");
  app.add_option("--mysql-tls-key", c.mysql.tls_key, "Private key of --mysql-tls-cert")
      ->envname("POLYCRUD_MYSQL_TLS_KEY");
  app.add_option("--mysql-pool-size", c.mysql.pool_size, "Most MySQL connections at once")
      ->envname("POLYCRUD_MYSQL_POOL_SIZE")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--mysql-lock-wait-timeout-ms", c.mysql.lock_wait_timeout_ms,
                 "A statement waiting this long for a row or table lock fails (RESOURCE_EXHAUSTED, "
                 "nothing written) instead of waiting for the read timeout; whole seconds")
      ->envname("POLYCRUD_MYSQL_LOCK_WAIT_TIMEOUT_MS")
      ->check(CLI::Range(std::int64_t{1000}, std::int64_t{3'600'000}))
      ->capture_default_str();
  app.add_option("--mysql-causal-reads", c.mysql.causal_reads,
                 "On a Galera node, reads wait until the node has applied every write the "
                 "cluster committed before them (wsrep_sync_wait), so a read after a failover "
                 "never misses one; no effect on a single MariaDB")
      ->envname("POLYCRUD_MYSQL_CAUSAL_READS")
      ->capture_default_str();
  app.add_option("--drain-ms", c.drain_ms,
                 "On SIGTERM, first report not ready for this long (/readyz 503 \"draining\", "
                 "gRPC health NOT_SERVING) while still serving, so a load balancer stops sending "
                 "calls before the faces close; a second signal cuts it short. 0: stop at once")
      ->envname("POLYCRUD_DRAIN_MS")
      ->check(CLI::Range(0, 600'000))
      ->capture_default_str();
  app.add_option("--max-connections", c.max_connections,
                 "Client connections the Thrift (fibers) and REST faces may hold together; "
                 "beyond it a new connection is closed at once. 0: the descriptor limit "
                 "(raised to its hard limit at start) less what MySQL, Redis and the process "
                 "need")
      ->envname("POLYCRUD_MAX_CONNECTIONS")
      ->check(CLI::Range(0, 10'000'000))
      ->capture_default_str();
  app.add_option("--rate-limit-per-token", c.rate_limit_per_token,
                 "Requests a second each token may make, on all faces together (Ping is "
                 "free); beyond it RESOURCE_EXHAUSTED with a retry hint (REST 429). 0: no limit")
      ->envname("POLYCRUD_RATE_LIMIT_PER_TOKEN")
      ->check(CLI::Range(0.0, 10'000'000.0))
      ->capture_default_str();
  app.add_option("--rate-limit-burst", c.rate_limit_burst,
                 "Requests a token may make at once after a pause (0: --rate-limit-per-token, "
                 "at least 1)")
      ->envname("POLYCRUD_RATE_LIMIT_BURST")
      ->check(CLI::Range(0.0, 10'000'000.0))
      ->capture_default_str();
  app.add_option("--mysql-wait-s", c.mysql_wait_s,
                 "At start-up, keep trying to reach MySQL for this long")
      ->envname("POLYCRUD_MYSQL_WAIT_S")
      ->capture_default_str();

  app.add_option("--redis-host", c.services.redis.endpoint.host)
      ->envname("POLYCRUD_REDIS_HOST")
      ->capture_default_str();
  app.add_option("--redis-port", c.services.redis.endpoint.port)
      ->envname("POLYCRUD_REDIS_PORT")
      ->capture_default_str();
  app.add_option("--redis-user", c.services.redis.endpoint.user,
                 "Redis ACL user to log in as (empty: the default user)")
      ->envname("POLYCRUD_REDIS_USER");
  app.add_option("--redis-password", c.services.redis.endpoint.password,
                 "Password of the Redis user (empty: no AUTH). Prefer the environment variable")
      ->envname("POLYCRUD_REDIS_PASSWORD");
  app.add_option("--redis-cluster", c.services.redis.cluster_seeds,
                 "Redis Cluster: host:port of nodes to read the slot map from, comma-separated "
                 "(then --redis-host and --redis-port are unused)")
      ->envname("POLYCRUD_REDIS_CLUSTER")
      ->delimiter(',');
  app.add_option("--shared-cache", c.shared_cache,
                 "Other servers use the same cache: an update or delete that cannot mark its "
                 "cache entry first (Redis unreachable) answers UNAVAILABLE with nothing written, "
                 "since this server's own repair would not keep the others off the old entry. "
                 "auto: on with --redis-cluster")
      ->envname("POLYCRUD_SHARED_CACHE")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  app.add_option("--amqp-host", c.events.amqp.host,
                 "RabbitMQ host for change events (docs/events.md): every write then leaves an "
                 "event in the outbox, one server at a time publishes them, and every server "
                 "consumes them to keep its near cache coherent. Empty: no change events")
      ->envname("POLYCRUD_AMQP_HOST");
  app.add_option("--amqp-port", c.events.amqp.port, "RabbitMQ AMQP port")
      ->envname("POLYCRUD_AMQP_PORT")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--amqp-user", c.events.amqp.user, "RabbitMQ user")
      ->envname("POLYCRUD_AMQP_USER")
      ->capture_default_str();
  app.add_option("--amqp-password", c.events.amqp.password,
                 "Password of --amqp-user. Prefer the environment variable")
      ->envname("POLYCRUD_AMQP_PASSWORD");
  app.add_option("--amqp-vhost", c.events.amqp.vhost, "RabbitMQ virtual host")
      ->envname("POLYCRUD_AMQP_VHOST")
      ->capture_default_str();
  app.add_option("--events-batch", c.events.relay.batch,
                 "Most events the relay publishes before waiting for the broker's confirms")
      ->envname("POLYCRUD_EVENTS_BATCH")
      ->check(CLI::Range(1, 5000))
      ->capture_default_str();
  app.add_option("--events-retention-s", c.events_retention_s,
                 "How long published events stay in the outbox before they are pruned")
      ->envname("POLYCRUD_EVENTS_RETENTION_S")
      ->check(CLI::Range(1, 365 * 86400))
      ->capture_default_str();
  app.add_option("--events-lease-ms", c.events.relay.lease_ms,
                 "How long the relay lease lasts without renewal: a relay that dies is replaced "
                 "after at most this long")
      ->envname("POLYCRUD_EVENTS_LEASE_MS")
      ->check(CLI::Range(5'000, 600'000))
      ->capture_default_str();
  app.add_option("--events-relay", c.events_relay,
                 "Take part in publishing the outbox (the server holding the relay lease "
                 "publishes; the others stand by)")
      ->envname("POLYCRUD_EVENTS_RELAY")
      ->capture_default_str();
  app.add_option("--redis-tls-ca", c.services.redis.endpoint.tls.ca,
                 "Connect to Redis over TLS, its certificate verified against this CA and "
                 "--redis-host (needs --redis-pipelined-connections > 0)")
      ->envname("POLYCRUD_REDIS_TLS_CA");
  app.add_option("--redis-tls-cert", c.services.redis.endpoint.tls.cert,
                 "Client certificate for Redis (tls-auth-clients yes)")
      ->envname("POLYCRUD_REDIS_TLS_CERT");
  app.add_option("--redis-tls-key", c.services.redis.endpoint.tls.key,
                 "Private key of --redis-tls-cert")
      ->envname("POLYCRUD_REDIS_TLS_KEY");
  app.add_option("--redis-pool-size", c.services.redis.pool_size, "Most Redis connections at once")
      ->envname("POLYCRUD_REDIS_POOL_SIZE")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--redis-pipelined-connections", c.services.redis.pipelined_connections,
                 "Shared Redis connections that pipeline the cache commands of the requests "
                 "served on plain threads (one round trip serves many; each fiber thread of "
                 "the Thrift face pipelines on a connection of its own); 0: each command "
                 "borrows a pooled connection (--redis-pool-size)")
      ->envname("POLYCRUD_REDIS_PIPELINED_CONNECTIONS")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app.add_option("--redis-max-pending", c.services.redis.max_pending,
                 "Most cache commands outstanding per pipelined connection; beyond it a command "
                 "fails at once (the read then goes to MySQL behind the fallback limit)")
      ->envname("POLYCRUD_REDIS_MAX_PENDING")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--redis-timeout-ms", c.redis_timeout_ms,
                 "Longest wait for a Redis reply; a connection that exceeds it is closed and "
                 "its commands fail (the circuit breaker counts them)")
      ->envname("POLYCRUD_REDIS_TIMEOUT_MS")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
  app.add_option("--near-cache-entries", c.near_entries,
                 "Slots of an in-process cache in front of Redis (a hit then costs no Redis "
                 "round trip); 0: off. With change events (--amqp-host) every server forgets "
                 "what another changed; without, it is correct only when every write goes "
                 "through this one server instance. Default: 100000 with change events, else 0")
      ->envname("POLYCRUD_NEAR_CACHE_ENTRIES")
      ->check(CLI::Range(0, 50'000'000));
  app.add_option("--near-cache-ttl-ms", c.near_ttl_ms,
                 "Longest time an entry stays in the in-process cache")
      ->envname("POLYCRUD_NEAR_CACHE_TTL_MS")
      ->check(CLI::Range(1, 3'600'000))
      ->capture_default_str();
  app.add_option("--cache-ttl-s", c.cache_ttl_s, "TTL of a cached user (jittered by 10%)")
      ->envname("POLYCRUD_CACHE_TTL_S")
      ->check(CLI::Range(1, 30 * 86400))
      ->capture_default_str();

  app.add_option("--fallback-read-concurrency", c.services.service.fallback_read_concurrency,
                 "While Redis is unusable, at most this many reads go to MySQL at once; "
                 "the excess is answered RESOURCE_EXHAUSTED")
      ->envname("POLYCRUD_FALLBACK_READ_CONCURRENCY")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--admin-token-sha256", c.admin_hashes,
                 "SHA-256 (hex) of an admin token; repeat or comma-separate (SIGHUP reloads the "
                 "token hashes, the files' too)")
      ->envname("POLYCRUD_ADMIN_TOKEN_SHA256")
      ->delimiter(',');
  app.add_option("--reader-token-sha256", c.reader_hashes,
                 "SHA-256 (hex) of a reader token; repeat or comma-separate")
      ->envname("POLYCRUD_READER_TOKEN_SHA256")
      ->delimiter(',');
  app.add_option("--tls-cert", c.tls.cert,
                 "TLS certificate (PEM, chain) of every face: each then serves TLS 1.2+ on its "
                 "port; --<face>-tls-cert and the like set one face's own. SIGHUP reads the "
                 "certificates and keys again (gRPC's face watches its files by itself)")
      ->envname("POLYCRUD_TLS_CERT");
  app.add_option("--tls-key", c.tls.key, "Private key of --tls-cert (PEM, keep it 0600)")
      ->envname("POLYCRUD_TLS_KEY");
  app.add_option("--tls-client-ca", c.tls.ca,
                 "Mutual TLS: every face requires a client certificate signed by this CA")
      ->envname("POLYCRUD_TLS_CLIENT_CA");
  app.add_option("--mysql-password-file", c.mysql_password_file,
                 "Read the MariaDB password from this file (its first line)")
      ->envname("POLYCRUD_MYSQL_PASSWORD_FILE");
  app.add_option("--redis-password-file", c.redis_password_file,
                 "Read the Redis password from this file (its first line)")
      ->envname("POLYCRUD_REDIS_PASSWORD_FILE");
  app.add_option("--amqp-password-file", c.amqp_password_file,
                 "Read the RabbitMQ password from this file (its first line)")
      ->envname("POLYCRUD_AMQP_PASSWORD_FILE");
  app.add_option("--admin-token-sha256-file", c.admin_token_sha256_file,
                 "Read admin token hashes from this file, one per line (# comments), besides "
                 "--admin-token-sha256")
      ->envname("POLYCRUD_ADMIN_TOKEN_SHA256_FILE");
  app.add_option("--reader-token-sha256-file", c.reader_token_sha256_file,
                 "Read reader token hashes from this file, one per line (# comments), besides "
                 "--reader-token-sha256")
      ->envname("POLYCRUD_READER_TOKEN_SHA256_FILE");
  app.add_option("--config", c.config_file,
                 "Configuration file (e.g. /etc/polycrud/server.conf): \"key = value\" lines "
                 "named as the long flags (\"mysql-host = db1\", # comments); a flag or its "
                 "environment variable overrides a key")
      ->envname("POLYCRUD_CONFIG")
      ->configurable(false);
  app.add_flag("--check-config", c.check_config,
               "Check the flags, environment, configuration file and secret files, print what "
               "is wrong or \"configuration OK\", and exit (2 or 0) without connecting anywhere")
      ->configurable(false);
  app.add_flag("--migrate-only", c.migrate_only,
               "Apply the schema migrations (under the migration lease, waiting up to "
               "--mysql-wait-s for MariaDB) and exit: the step before a rolling upgrade")
      ->configurable(false);
  for (const auto& face : faces) face->AddOptions(app);
}

std::string EffectiveSettings(const CLI::App& app) {
  std::istringstream lines(app.config_to_str(/*default_also=*/true, /*write_description=*/false));
  std::string out;
  for (std::string line; std::getline(lines, line);) {
    const std::size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq);
    const std::string value = line.substr(eq + 1);
    const bool secret = key.find("password") != std::string::npos && !key.ends_with("-file");
    out += key + " = " + (secret && value != "\"\"" ? "(hidden)" : value) + "\n";
  }
  return out;
}

std::optional<std::string> CompleteConfig(CLI::App& app, Config& c) {
  if (!c.config_file.empty()) {
    if (std::optional<std::string> error = ApplyConfigFile(app, c.config_file)) return error;
  }
  if (auto e = ReadSecret(app, c.mysql_password_file, "mysql-password")) return e;
  if (auto e = ReadSecret(app, c.redis_password_file, "redis-password")) return e;
  if (auto e = ReadSecret(app, c.amqp_password_file, "amqp-password")) return e;
  if (auto e = ReadHashes(app, c.admin_token_sha256_file, "admin-token-sha256")) return e;
  return ReadHashes(app, c.reader_token_sha256_file, "reader-token-sha256");
}

std::optional<std::string> ValidateConfig(Config& c, const FaceList& faces,
                                          std::vector<Face*>& selected,
                                          std::optional<Sha256TokenVerifier>& tokens) {
  if (c.admin_hashes.empty() && c.reader_hashes.empty()) {
    return "no token configured: set POLYCRUD_ADMIN_TOKEN_SHA256 or --admin-token-sha256-file "
           "(see --help)";
  }
  StatusOr<Sha256TokenVerifier> verifier =
      Sha256TokenVerifier::Create(c.admin_hashes, c.reader_hashes);
  if (!verifier.ok()) return "bad token configuration: " + verifier.status().message();
  tokens.emplace(std::move(*verifier));
  if (c.protocols.empty()) {
    for (const auto& face : faces) c.protocols.emplace_back(face->name());
  }
  for (const std::string& wanted : c.protocols) {
    bool known = false;
    for (const auto& face : faces) known = known || face->name() == wanted;
    if (!known) return "unknown protocol '" + wanted + "' in --protocols";
  }
  // The faces asked for, in the order MakeFaces() lists them.
  selected.clear();
  for (const auto& face : faces) {
    for (const std::string& wanted : c.protocols) {
      if (face->name() == wanted) {
        selected.push_back(face.get());
        break;
      }
    }
  }
  for (const std::string& seed : c.services.redis.cluster_seeds) {
    if (StatusOr<RedisClusterNode> node = ParseClusterNode(seed); !node.ok()) {
      return "--redis-cluster: " + node.status().message();
    }
  }
  if (c.services.redis.endpoint.uses_tls() && c.services.redis.pipelined_connections == 0) {
    return "--redis-tls-ca needs --redis-pipelined-connections > 0: the pooled Redis "
           "connections (hiredis 0.14) have no TLS";
  }
  // Settings that follow from others.
  c.services.service.shared_cache =
      c.shared_cache == "on" ||
      (c.shared_cache == "auto" && !c.services.redis.cluster_seeds.empty());
  const bool events_on = !c.events.amqp.host.empty();
  c.mysql.write_events = events_on;
  c.services.near.entries = c.near_entries >= 0
                                ? static_cast<std::size_t>(c.near_entries)
                                : (events_on ? std::size_t{100'000} : std::size_t{0});
  c.services.near.ttl = std::chrono::milliseconds(c.near_ttl_ms);
  c.services.cache.user_ttl = std::chrono::seconds(c.cache_ttl_s);
  c.services.redis.endpoint.command_timeout = std::chrono::milliseconds(c.redis_timeout_ms);
  return std::nullopt;
}

}  // namespace polycrud::server
