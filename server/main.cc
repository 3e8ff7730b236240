// polycrud-server: the one place that wires the core to its drivers and
// protocol faces. Every setting comes from a flag, an environment variable or
// the configuration file (server/config.h, see --help).
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/reloadable_token_verifier.h"
#include "core/sha256_token_verifier.h"
#include "core/user_service.h"
#include "server/change_events.h"
#include "server/config.h"
#include "server/face.h"
#include "server/prometheus_text.h"
#include "server/reload.h"
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

// Blocks the shutdown signals and SIGHUP (reload) in every thread created
// from now on, so the main thread can wait for them with sigwait.
sigset_t BlockServerSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
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
  polycrud::server::Config config;
  polycrud::server::FaceList faces = polycrud::server::MakeFaces();
  app.set_version_flag("--version", POLYCRUD_VERSION);
  polycrud::server::AddOptions(app, config, faces);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // Flags and the environment, then the configuration file and the secret
  // files, then what can be checked without a server.
  std::vector<polycrud::server::Face*> selected;
  std::optional<polycrud::Sha256TokenVerifier> tokens;
  std::optional<std::string> config_error = polycrud::server::CompleteConfig(app, config);
  if (!config_error.has_value()) {
    config_error = polycrud::server::ValidateConfig(config, faces, selected, tokens);
  }
  if (config_error.has_value()) {
    std::fprintf(stderr, "polycrud-server: %s\n", config_error->c_str());
    return 2;
  }
  if (config.check_config) {
    std::printf("configuration OK%s; the settings in force:\n%s",
                config.config_file.empty() ? "" : (" (" + config.config_file + ")").c_str(),
                polycrud::server::EffectiveSettings(app).c_str());
    return 0;
  }
  const bool events_on = !config.events.amqp.host.empty();

  const polycrud::server::LogFormat log_format = config.log_format == "json"
                                                     ? polycrud::server::LogFormat::kJson
                                                     : polycrud::server::LogFormat::kText;
  polycrud::server::SetLogFormat(log_format);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  const sigset_t signals = BlockServerSignals();

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
  if (config.migrate_only) {
    spdlog::info("schema migrations applied; exiting (--migrate-only)");
    return 0;
  }
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
  polycrud::server::SpdlogAuditLog audit_log(log_format);
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
  // The token hashes in force, replaced by a reload (SIGHUP).
  polycrud::ReloadableTokenVerifier token_hashes(
      std::make_shared<const polycrud::Sha256TokenVerifier>(std::move(*tokens)));
  polycrud::server::Reloader reloader(argc, argv, token_hashes,
                                      polycrud::server::EffectiveSettings(app));
  polycrud::server::Services services(store, token_hashes, clock, config.services, &limited_events);
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
  // Under systemd (Type=notify) the unit counts as started from here; outside
  // it (no NOTIFY_SOCKET) this does nothing.
  sd_notify(0, "READY=1\nSTATUS=serving");

  int signal_number = 0;
  for (;;) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) break;
    sd_notify(0, "RELOADING=1\nSTATUS=reloading");
    const bool reloaded = reloader.Reload();
    sd_notify(0, reloaded ? "READY=1\nSTATUS=serving"
                          : "READY=1\nSTATUS=serving; the last reload failed (see the log)");
  }
  sd_notify(0, "STOPPING=1\nSTATUS=stopping");
  if (config.drain_ms > 0) {
    spdlog::info("received {}: reporting not ready for {} ms before stopping",
                 strsignal(signal_number), config.drain_ms);
    services.BeginDrain();
    const timespec drain{.tv_sec = config.drain_ms / 1000,
                         .tv_nsec = static_cast<long>(config.drain_ms % 1000) * 1'000'000};
    // A reload meanwhile is not done: the server is going.
    sigset_t stop_signals = signals;
    sigdelset(&stop_signals, SIGHUP);
    if (sigtimedwait(&stop_signals, nullptr, &drain) > 0) {
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
