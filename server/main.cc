// polycrud-server: the one place that wires the core to its drivers and
// protocol faces. Every setting comes from a flag or an environment variable
// (see --help).
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cache/redis/redis_cluster_client.h"
#include "core/sha256_token_verifier.h"
#include "core/user_service.h"
#include "server/change_events.h"
#include "server/face.h"
#include "server/prometheus_text.h"
#include "server/services.h"
#include "server/spdlog_audit_log.h"
#include "server/spdlog_event_log.h"
#include "storage/mysql/mysql_user_store.h"

namespace {

// Raises the soft limit on open descriptors to the hard one; returns the
// soft limit in force and, in `before`, the one found.
rlim_t RaiseDescriptorLimit(rlim_t& before) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return before = 1024;
  before = limit.rlim_cur;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return before;
  }
  return limit.rlim_cur;
}

struct Config {
  std::string log_level = "info";
  std::string bind_address = "127.0.0.1";
  std::vector<std::string> protocols;  // empty: every face this binary has
  // Statements end within 3 s (below the 5 s read timeout, which would
  // leave a write's outcome unknown).
  polycrud::MysqlOptions mysql{
      .user = "polycrud", .database = "polycrud", .statement_timeout_ms = 3000};
  int mysql_wait_s = 30;
  polycrud::server::ServicesOptions services{.near = {.entries = 0}};
  int cache_ttl_s = 3600;
  int redis_timeout_ms = 500;
  int near_ttl_ms = 1000;
  int max_connections = 0;            // 0: what the descriptor limit leaves
  int drain_ms = 0;                   // readiness 503 for this long before stopping
  std::string shared_cache = "auto";  // auto: on with --redis-cluster
  int near_entries = -1;              // -1: 100,000 with change events, else off
  polycrud::server::ChangeEventsOptions events{.amqp = {.user = "polycrud"}};
  int events_retention_s = 86400;
  bool events_relay = true;
  double rate_limit_per_token = 0;  // requests/s; 0: off
  double rate_limit_burst = 0;      // 0: one second's worth
  std::vector<std::string> admin_hashes;
  std::vector<std::string> reader_hashes;
  polycrud::tls::TlsFiles tls;
};

void AddOptions(CLI::App& app, Config& c, const polycrud::server::FaceList& faces) {
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error")
      ->envname("POLYCRUD_LOG_LEVEL")
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
                 "SHA-256 (hex) of an admin token; repeat or comma-separate")
      ->envname("POLYCRUD_ADMIN_TOKEN_SHA256")
      ->delimiter(',');
  app.add_option("--reader-token-sha256", c.reader_hashes,
                 "SHA-256 (hex) of a reader token; repeat or comma-separate")
      ->envname("POLYCRUD_READER_TOKEN_SHA256")
      ->delimiter(',');
  app.add_option("--tls-cert", c.tls.cert,
                 "TLS certificate (PEM, chain) of every face: each then serves TLS 1.2+ on its "
                 "port; --<face>-tls-cert and the like set one face's own")
      ->envname("POLYCRUD_TLS_CERT");
  app.add_option("--tls-key", c.tls.key, "Private key of --tls-cert (PEM, keep it 0600)")
      ->envname("POLYCRUD_TLS_KEY");
  app.add_option("--tls-client-ca", c.tls.ca,
                 "Mutual TLS: every face requires a client certificate signed by this CA")
      ->envname("POLYCRUD_TLS_CLIENT_CA");
  for (const auto& face : faces) face->AddOptions(app);
}

// Blocks the shutdown signals in every thread created from now on, so the
// main thread can wait for them with sigwait.
sigset_t BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t alive_since_s = std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count();
  CLI::App app{
      "polycrud-server: the polycrud user directory over MariaDB and Redis, served on\n"
      "the protocol faces chosen with --protocols.\n"
      "Every option can also be set through the environment variable shown."};
  Config config;
  polycrud::server::FaceList faces = polycrud::server::MakeFaces();
  AddOptions(app, config, faces);
  CLI11_PARSE(app, argc, argv);
  config.services.service.shared_cache =
      config.shared_cache == "on" ||
      (config.shared_cache == "auto" && !config.services.redis.cluster_seeds.empty());
  const bool events_on = !config.events.amqp.host.empty();
  config.mysql.write_events = events_on;
  config.services.near.entries = config.near_entries >= 0
                                     ? static_cast<std::size_t>(config.near_entries)
                                     : (events_on ? std::size_t{100'000} : std::size_t{0});

  const std::string log_pattern = "%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ [%t] %v";
  spdlog::set_pattern(log_pattern);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  const sigset_t signals = BlockShutdownSignals();

  if (config.admin_hashes.empty() && config.reader_hashes.empty()) {
    spdlog::critical("no token configured: set POLYCRUD_ADMIN_TOKEN_SHA256 (see --help)");
    return 2;
  }
  polycrud::StatusOr<polycrud::Sha256TokenVerifier> tokens =
      polycrud::Sha256TokenVerifier::Create(config.admin_hashes, config.reader_hashes);
  if (!tokens.ok()) {
    spdlog::critical("bad token configuration: {}", tokens.status().message());
    return 2;
  }
  if (config.protocols.empty()) {
    for (const auto& face : faces) config.protocols.emplace_back(face->name());
  }
  // The faces asked for, in the order MakeFaces() lists them.
  std::vector<polycrud::server::Face*> selected;
  for (const std::string& wanted : config.protocols) {
    bool known = false;
    for (const auto& face : faces) known = known || face->name() == wanted;
    if (!known) {
      spdlog::critical("unknown protocol '{}' in --protocols", wanted);
      return 2;
    }
  }
  for (const auto& face : faces) {
    for (const std::string& wanted : config.protocols) {
      if (face->name() == wanted) {
        selected.push_back(face.get());
        break;
      }
    }
  }
  for (const std::string& seed : config.services.redis.cluster_seeds) {
    if (polycrud::StatusOr<polycrud::RedisClusterNode> node = polycrud::ParseClusterNode(seed);
        !node.ok()) {
      spdlog::critical("--redis-cluster: {}", node.status().message());
      return 2;
    }
  }
  if (config.services.redis.endpoint.uses_tls() &&
      config.services.redis.pipelined_connections == 0) {
    spdlog::critical(
        "--redis-tls-ca needs --redis-pipelined-connections > 0: the pooled Redis connections "
        "(hiredis 0.14) have no TLS");
    return 2;
  }
  config.services.cache.user_ttl = std::chrono::seconds(config.cache_ttl_s);
  config.services.redis.endpoint.command_timeout =
      std::chrono::milliseconds(config.redis_timeout_ms);

  polycrud::MysqlUserStore store(config.mysql);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(config.mysql_wait_s);
  for (;;) {
    polycrud::Status migrated = store.Migrate();
    if (migrated.ok()) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      spdlog::critical("cannot apply the schema migrations: {}", migrated.ToString());
      return 1;
    }
    spdlog::warn("waiting for MySQL at {}:{}: {}", config.mysql.host, config.mysql.port,
                 migrated.ToString());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  config.services.near.ttl = std::chrono::milliseconds(config.near_ttl_ms);
  if (config.services.near.entries > 0 && !events_on) {
    spdlog::warn(
        "near cache on ({} entries, {} ms): correct only while every write goes "
        "through this one server instance",
        config.services.near.entries, config.near_ttl_ms);
  }
  config.services.service.server_version = POLYCRUD_VERSION;
  config.services.offload_workers = static_cast<int>(config.mysql.pool_size);
  polycrud::SystemClock clock;
  // Every UserService of the process and what each runtime's calls run on.
  // Degraded modes reach the log at most 5 lines a second per kind.
  polycrud::server::SpdlogEventLog event_log;
  // Every admin write attempt, whatever the log level.
  polycrud::server::SpdlogAuditLog audit_log(log_pattern);
  config.services.service.audit = &audit_log;
  std::optional<polycrud::TokenRateLimiter> rate_limiter;
  if (config.rate_limit_per_token > 0) {
    const double burst = config.rate_limit_burst > 0 ? config.rate_limit_burst
                                                     : std::max(1.0, config.rate_limit_per_token);
    rate_limiter.emplace(config.rate_limit_per_token, burst, clock);
    config.services.service.rate_limiter = &*rate_limiter;
    spdlog::info("rate limit: {} requests/s per token, bursts of {}", config.rate_limit_per_token,
                 burst);
  }
  polycrud::RateLimitedEventLog limited_events(event_log, clock);
  std::optional<polycrud::server::ChangeEvents> change_events;
  if (events_on) {
    config.events.relay.retention_ms = std::int64_t{config.events_retention_s} * 1000;
    change_events.emplace(config.mysql, config.events, clock, &limited_events);
    config.services.service.after_write = [&change_events] { change_events->Nudge(); };
  }
  polycrud::server::Services services(store, *tokens, clock, config.services, &limited_events);
  // Stops the change events before `services`, whose near cache they use, goes.
  struct StopEvents {
    std::optional<polycrud::server::ChangeEvents>& events;
    ~StopEvents() {
      if (events.has_value()) events->Stop();
    }
  } stop_events{change_events};
  if (change_events.has_value()) {
    change_events->AttachNearCache(services.near_cache());
    change_events->Start(config.events_relay);
    spdlog::info("change events: outbox on, {} the relay, consuming from {}:{} (near cache: {})",
                 config.events_relay ? "taking part in" : "not taking part in",
                 config.events.amqp.host, config.events.amqp.port,
                 config.services.near.entries > 0
                     ? std::to_string(config.services.near.entries) + " entries"
                     : std::string("off"));
  }
  polycrud::UserService& service = services.threads();
  if (!service.CacheReachable()) {
    spdlog::warn("Redis at {}:{} is not reachable: reads go to MySQL until it is",
                 config.services.redis.endpoint.host, config.services.redis.endpoint.port);
  }

  // One budget of client connections below the descriptor limit, so that a
  // flood of clients cannot take the descriptors MySQL and Redis reconnects
  // need. Reserved: both pools, the pipelined and fiber-thread Redis
  // connections, and 256 for listening sockets, logs, epoll, gRPC.
  rlim_t descriptors_before = 0;
  const rlim_t descriptors = RaiseDescriptorLimit(descriptors_before);
  const long reserved = static_cast<long>(config.mysql.pool_size) +
                        config.services.redis.pool_size +
                        config.services.redis.pipelined_connections + 16 + 256;
  const long available =
      std::max(16L, static_cast<long>(std::min<rlim_t>(descriptors, 1 << 30)) - reserved);
  long budget = config.max_connections > 0 ? config.max_connections : available;
  if (budget > available) {
    spdlog::warn("--max-connections {} is more than the {} descriptors leave; using {}",
                 config.max_connections, descriptors, available);
    budget = available;
  }
  polycrud::runtime::ConnectionBudget connections(static_cast<int>(budget));
  spdlog::info("descriptors: limit {} (was {}); client connections: at most {}", descriptors,
               descriptors_before, budget);

  polycrud::Metrics metrics;
  std::atomic<bool> all_started{false};  // every face chosen listens
  const polycrud::server::FaceContext context{
      .service = service,
      .metrics = metrics,
      .bind_address = config.bind_address,
      .service_for_fiber_thread = [&](int thread) -> polycrud::UserService& {
        return services.ForFiberThread(thread);
      },
      .metrics_text =
          [&] {
            std::optional<polycrud::server::ChangeEventUsage> events;
            if (change_events.has_value()) events = change_events->Usage();
            return polycrud::server::RenderPrometheusText(
                metrics, service.cache_stats(), service.cache_breaker_state(),
                polycrud::server::PoolUsage{
                    .mysql_open = static_cast<std::int64_t>(store.pool().open_connections()),
                    .mysql_in_use = static_cast<std::int64_t>(store.pool().leased_connections()),
                    .mysql_size = static_cast<std::int64_t>(config.mysql.pool_size),
                    .redis_in_use = static_cast<std::int64_t>(services.redis_busy()),
                    .redis_size = config.services.redis.pool_size,
                },
                events.has_value() ? &*events : nullptr);
          },
      .version = POLYCRUD_VERSION,
      .alive_since_s = alive_since_s,
      .started = [&all_started] { return all_started.load(std::memory_order_acquire); },
      .connections = connections,
      .tls = config.tls,
  };
  std::vector<polycrud::server::Face*> started;
  for (polycrud::server::Face* face : selected) {
    try {
      face->Start(context);
    } catch (const std::exception& e) {
      spdlog::critical("cannot start the {} face: {}", face->name(), e.what());
      for (auto it = started.rbegin(); it != started.rend(); ++it) (*it)->Stop();
      return 1;
    }
    started.push_back(face);
    spdlog::info("{} listening on {}", face->name(), face->Describe());
  }
  all_started.store(true, std::memory_order_release);
  spdlog::info("polycrud-server {} ready", POLYCRUD_VERSION);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  if (config.drain_ms > 0) {
    spdlog::info("received {}: reporting not ready for {} ms before stopping",
                 strsignal(signal_number), config.drain_ms);
    services.BeginDrain();
    const timespec drain{.tv_sec = config.drain_ms / 1000,
                         .tv_nsec = static_cast<long>(config.drain_ms % 1000) * 1'000'000};
    if (sigtimedwait(&signals, nullptr, &drain) > 0) {
      spdlog::info("a second signal: stopping before the drain time is over");
    }
  }
  spdlog::info("received {}, draining in-flight calls", strsignal(signal_number));
  services.BeginShutdown();
  for (auto it = started.rbegin(); it != started.rend(); ++it) (*it)->Stop();
  // Writes whose cache update failed, or whose outcome was unknown, are
  // repaired before the process goes (docs/cache-protocol.md, rule 9).
  if (const std::size_t left = services.DrainRepairs(5000); left > 0) {
    spdlog::warn("{} cache entries could not be repaired before stopping: they heal by TTL", left);
  }
  // The relay gives its lease up, so another server publishes at once.
  if (change_events.has_value()) change_events->Stop();
  spdlog::info("stopped");
  return 0;
}
