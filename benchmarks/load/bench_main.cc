// polycrud-bench: the end-to-end load generator. It drives one protocol face
// (or the web gateway) through that protocol's real client library
// (polycrud::clients) with an operation mix and a key distribution, in a
// closed loop (each connection sends its next call when the previous answer
// arrived: saturation throughput) or an open loop (arrivals on a fixed
// schedule, latency measured from each request's intended send time). It
// prints a summary and writes one JSON document (--json) that
// `./polycrud bench` and the report generator read; the "Load
// generator" section of docs/benchmarking.md describes every field.
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks/load/arrival_schedule.h"
#include "benchmarks/load/key_chooser.h"
#include "benchmarks/load/latency_histogram.h"
#include "benchmarks/load/op_mix.h"
#include "benchmarks/load/server_stats.h"
#include "benchmarks/load/socket_bytes.h"
#include "clients/protocol_client.h"
#include "runtime/fiber_scheduler.h"
#include "runtime/io_wait.h"

namespace polycrud::bench {
namespace {

using Clock = std::chrono::steady_clock;
using clients::CallStatus;
using clients::ProtocolClient;
using runtime::FiberScheduler;
using Json = nlohmann::ordered_json;

// Error kinds: the core codes (index = StatusCode value) and TRANSPORT.
constexpr std::size_t kTransportKind = static_cast<std::size_t>(StatusCode::kInternal) + 1;
constexpr std::size_t kErrorKinds = kTransportKind + 1;

std::string ErrorKindName(std::size_t kind) {
  if (kind == kTransportKind) return "TRANSPORT";
  return std::string(StatusCodeName(static_cast<StatusCode>(kind)));
}

// A pause after a transport failure, so a server that is down is not
// hammered with connection attempts.
constexpr auto kTransportBackoff = std::chrono::milliseconds(10);

struct Options {
  std::string protocol;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string token;
  std::string mix_text = "get=100";
  int batch_size = 1000;
  int list_limit = 100;
  int search_digits = 6;
  int search_limit = 20;
  std::string keys = "uniform";
  double zipf_s = 0.99;
  std::int64_t min_id = 1;
  std::int64_t max_id = 1000;
  int connections = 16;
  std::string io = "fibers";
  int threads = 0;  // 0: fibers 2 (at most connections), threads = connections
  std::string mode = "closed";
  double rate = 0;
  std::string arrivals = "uniform";
  double warmup_s = 2;
  double duration_s = 10;
  double drain_s = -1;  // <0: min(max(1, duration), 10)
  std::uint32_t seed = 1;
  std::string metrics_url;
  int redis_port = 0;
  std::string redis_host = "127.0.0.1";
  std::string redis_user;
  std::string redis_password;
  std::vector<int> server_pids;
  std::string json_path;
  std::string label;
  bool progress = false;
  bool progress_json = false;
  int timeout_ms = 10'000;
  tls::TlsFiles tls;  // --tls-ca, --tls-cert, --tls-key
};

// What one thread measured; merged after the run.
struct alignas(64) Worker {
  int index = 0;
  std::vector<std::unique_ptr<ProtocolClient>> clients;
  std::size_t next_client = 0;
  std::mt19937_64 rng;
  std::vector<std::int64_t> created;  // ids this thread created and has not deleted
  std::int64_t sequence = 0;

  LatencyHistogram all;
  std::array<std::unique_ptr<LatencyHistogram>, kOpCount> by_op;
  std::array<std::int64_t, kOpCount> op_requests{};
  std::array<std::int64_t, kOpCount> op_errors{};
  std::array<std::int64_t, kErrorKinds> errors{};
  std::int64_t window_completions = 0;  // calls that completed in [W0, W1)
  // Open loop: arrivals due in [W0, W1), those completed by W1, after W1
  // (drained), and those the drain deadline cut off (never sent).
  std::int64_t window_arrivals = 0;
  std::int64_t completed_by_end = 0;
  std::int64_t drained = 0;
  std::int64_t not_sent = 0;
  // Every call and every failed one (any phase), for the progress display.
  std::atomic<std::int64_t> calls{0};
  std::atomic<std::int64_t> failures{0};
  // --progress-json: the latency of every call (any phase) since the last
  // progress line, taken by the display thread; null without the flag.
  std::mutex live_mutex;
  std::unique_ptr<LatencyHistogram> live;
};

void RecordLive(Worker& w, std::int64_t latency_ns) {
  if (!w.live) return;
  const std::lock_guard lock(w.live_mutex);
  w.live->Record(latency_ns);
}

struct Config {
  const Options* options;
  OpMix mix;
  KeyChooser keys;
  std::string run_tag;  // makes usernames unique per run
};

std::string Base36(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[value % 36]);
    value /= 36;
  } while (value != 0);
  return out;
}

struct CallResult {
  Op op;
  CallStatus status;
};

// Issues one call of `op` on the worker's next connection.
CallResult Execute(Op op, Worker& w, const Config& config) {
  const Options& o = *config.options;
  ProtocolClient& client = *w.clients[w.next_client];
  w.next_client = (w.next_client + 1) % w.clients.size();
  if (op == Op::kDelete && w.created.empty()) op = Op::kCreate;
  switch (op) {
    case Op::kPing:
      return {op, client.Ping().status};
    case Op::kGet:
      return {op, client.GetUser(o.token, config.keys(w.rng)).status};
    case Op::kBatchGet: {
      std::vector<std::int64_t> ids(static_cast<std::size_t>(o.batch_size));
      for (std::int64_t& id : ids) id = config.keys(w.rng);
      return {op, client.BatchGetUsers(o.token, ids).status};
    }
    case Op::kList: {
      const std::int64_t after =
          std::uniform_int_distribution<std::int64_t>(o.min_id - 1, o.max_id - 1)(w.rng);
      return {op, client.ListUsers(o.token, after, o.list_limit).status};
    }
    case Op::kSearch: {
      // The start of a seeded username ("user" + 8 digits, polycrud-seed)
      // of a key: with 6 digits, a prefix 100 seeded users share, by
      // username and by e-mail alike.
      char name[32];
      std::snprintf(name, sizeof name, "user%08lld", static_cast<long long>(config.keys(w.rng)));
      const std::string prefix(name, 4 + static_cast<std::size_t>(o.search_digits));
      return {op, client.SearchUsers(o.token, prefix, o.search_limit).status};
    }
    case Op::kCreate: {
      // [a-z0-9_.-]{3,32}: "b" + run (<= 15) + "_" + thread (<= 2) + "_" + sequence.
      const std::string username = "b" + config.run_tag + "_" +
                                   Base36(static_cast<std::uint64_t>(w.index)) + "_" +
                                   Base36(static_cast<std::uint64_t>(w.sequence++));
      auto out = client.CreateUser(o.token, UserDraft{.username = username,
                                                      .email = username + "@bench.example.com",
                                                      .full_name = "Bench User"});
      // Bounded: beyond a million ids, new ones are no longer kept for deletes.
      if (out.ok() && w.created.size() < 1'000'000) w.created.push_back(out.value->id);
      return {op, out.status};
    }
    case Op::kUpdate: {
      UserPatch patch{.email = std::nullopt,
                      .full_name = "Bench update " + std::to_string(w.sequence++),
                      .expected_version = 0};
      return {op, client.UpdateUser(o.token, config.keys(w.rng), patch).status};
    }
    case Op::kDelete: {
      const std::int64_t id = w.created.back();
      w.created.pop_back();
      return {op, client.DeleteUser(o.token, id).status};
    }
  }
  return {op, CallStatus{.code = StatusCode::kInternal}};
}

void Record(Worker& w, const CallResult& r, std::int64_t latency_ns) {
  const auto op = static_cast<std::size_t>(r.op);
  w.all.Record(latency_ns);
  if (!w.by_op[op]) w.by_op[op] = std::make_unique<LatencyHistogram>();
  w.by_op[op]->Record(latency_ns);
  ++w.op_requests[op];
  if (r.status.transport_failure) {
    ++w.op_errors[op];
    ++w.errors[kTransportKind];
  } else if (r.status.code != StatusCode::kOk) {
    ++w.op_errors[op];
    ++w.errors[static_cast<std::size_t>(r.status.code)];
  }
}

struct Timeline {
  Clock::time_point t0;     // start of warm-up; open loop: arrival 0
  Clock::time_point w0;     // start of the measured window
  Clock::time_point w1;     // its end
  Clock::time_point drain;  // open loop: no call is sent after this
};

void ClosedLoop(Worker& w, const Config& config, const Timeline& t) {
  while (true) {
    const Clock::time_point start = Clock::now();
    if (start >= t.w1) break;
    const CallResult r = Execute(config.mix(w.rng), w, config);
    const Clock::time_point end = Clock::now();
    const std::int64_t latency_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
    if (end >= t.w0 && end < t.w1) {
      ++w.window_completions;
      Record(w, r, latency_ns);
    }
    RecordLive(w, latency_ns);
    w.calls.fetch_add(1, std::memory_order_relaxed);
    if (r.status.transport_failure || r.status.code != StatusCode::kOk) {
      w.failures.fetch_add(1, std::memory_order_relaxed);
    }
    if (r.status.transport_failure) runtime::SleepUntil(Clock::now() + kTransportBackoff);
  }
}

void OpenLoop(Worker& w, const Config& config, const Timeline& t, ArrivalSchedule& schedule) {
  const std::int64_t limit_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.w1 - t.t0).count();
  std::int64_t index = 0;
  std::int64_t offset_ns = 0;
  while (schedule.Take(limit_ns, &index, &offset_ns)) {
    const Clock::time_point intended = t.t0 + std::chrono::nanoseconds(offset_ns);
    const bool in_window = intended >= t.w0;
    if (in_window) ++w.window_arrivals;
    if (Clock::now() >= t.drain) {
      if (in_window) ++w.not_sent;
      continue;
    }
    runtime::SleepUntil(intended);
    const CallResult r = Execute(config.mix(w.rng), w, config);
    const Clock::time_point end = Clock::now();
    const std::int64_t latency_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(end - intended).count();
    if (end >= t.w0 && end < t.w1) ++w.window_completions;
    RecordLive(w, latency_ns);
    if (in_window) {
      Record(w, r, latency_ns);
      if (end < t.w1) {
        ++w.completed_by_end;
      } else {
        ++w.drained;
      }
    }
    w.calls.fetch_add(1, std::memory_order_relaxed);
    if (r.status.transport_failure || r.status.code != StatusCode::kOk) {
      w.failures.fetch_add(1, std::memory_order_relaxed);
    }
    if (r.status.transport_failure) runtime::SleepUntil(Clock::now() + kTransportBackoff);
  }
}

double ClientCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Counters read at both ends of the measured window.
struct Snapshot {
  std::map<ino_t, SocketBytes> sockets;
  std::optional<CacheCounters> cache;
  std::optional<double> server_cpu_s;
  double client_cpu_s = 0;
};

struct Sources {
  std::optional<HttpUrl> metrics;
  int redis_port = 0;
  std::string redis_host;
  std::string redis_user;
  std::string redis_password;
  std::vector<int> server_pids;
  int server_port = 0;
};

// CPU seconds of all server processes together; nullopt if none is given
// or one cannot be read.
std::optional<double> ServerCpuSeconds(const Sources& s) {
  if (s.server_pids.empty()) return std::nullopt;
  double total = 0;
  for (const int pid : s.server_pids) {
    const std::optional<double> seconds = ProcessCpuSeconds(pid);
    if (!seconds) return std::nullopt;
    total += *seconds;
  }
  return total;
}

std::optional<CacheCounters> ReadCache(const Sources& s) {
  if (s.metrics) return ScrapeMetricsCache(*s.metrics);
  if (s.redis_port != 0) {
    return ScrapeRedisCache(s.redis_host, s.redis_port, s.redis_user, s.redis_password);
  }
  return std::nullopt;
}

// Start of the window: the cache scrape first (its connection is closed
// before the sockets are read), then the CPU clocks and the socket counters.
Snapshot SnapshotAtStart(const Sources& s) {
  Snapshot out;
  out.cache = ReadCache(s);
  out.server_cpu_s = ServerCpuSeconds(s);
  out.client_cpu_s = ClientCpuSeconds();
  out.sockets = SnapshotSocketBytes(s.server_port);
  return out;
}

// End of the window: the same in reverse order.
Snapshot SnapshotAtEnd(const Sources& s) {
  Snapshot out;
  out.sockets = SnapshotSocketBytes(s.server_port);
  out.client_cpu_s = ClientCpuSeconds();
  out.server_cpu_s = ServerCpuSeconds(s);
  out.cache = ReadCache(s);
  return out;
}

// The progress display: a bar redrawn in place, or (--progress-json) one JSON
// line per tick with the rate and latency percentiles of the calls since
// the previous line, for programs that draw the run as it goes.
class Progress {
 public:
  enum class Style { kNone, kBar, kJson };
  Progress(Style style, const Timeline& t) : style_(style), t_(t) {}

  // `interval`: the latencies since the previous call (kJson only).
  void Draw(std::int64_t calls, std::int64_t errors, const char* phase,
            const LatencyHistogram* interval) {
    if (style_ == Style::kNone) return;
    const Clock::time_point now = Clock::now();
    const double total = std::chrono::duration<double>(t_.w1 - t_.t0).count();
    const double done = std::clamp(std::chrono::duration<double>(now - t_.t0).count(), 0.0, total);
    const double dt = std::chrono::duration<double>(now - last_time_).count();
    const double rate = dt > 0 ? static_cast<double>(calls - last_calls_) / dt : 0;
    last_time_ = now;
    last_calls_ = calls;
    if (style_ == Style::kJson) {
      Json line{{"phase", phase},    {"elapsed_s", done},      {"total_s", total},
                {"calls", calls},    {"failed_calls", errors}, {"requests_per_s", rate},
                {"p50_ms", nullptr}, {"p99_ms", nullptr}};
      if (interval != nullptr && interval->count() > 0) {
        line["p50_ms"] = interval->PercentileUs(0.50) / 1000.0;
        line["p99_ms"] = interval->PercentileUs(0.99) / 1000.0;
      }
      std::fprintf(stderr, "%s\n", line.dump().c_str());
      std::fflush(stderr);
      return;
    }
    constexpr int kWidth = 30;
    const int filled = total > 0 ? static_cast<int>(std::lround(kWidth * done / total)) : kWidth;
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r[%s] %-9s %5.1f/%.1f s  %9.0f calls/s  failed calls %lld   ",
                 bar.c_str(), phase, done, total, rate, static_cast<long long>(errors));
    std::fflush(stderr);
  }
  void Finish() {
    if (style_ == Style::kBar) std::fprintf(stderr, "\n");
  }

 private:
  Style style_;
  Timeline t_;
  Clock::time_point last_time_ = Clock::now();
  std::int64_t last_calls_ = 0;
};

Json LatencyJson(const LatencyHistogram& h) {
  return Json{{"p50", h.PercentileUs(0.50) / 1000.0}, {"p90", h.PercentileUs(0.90) / 1000.0},
              {"p99", h.PercentileUs(0.99) / 1000.0}, {"p999", h.PercentileUs(0.999) / 1000.0},
              {"max", h.PercentileUs(1.0) / 1000.0},  {"mean", h.mean_ns() / 1e6}};
}

// Usage errors: message on stderr, exit status 2.
int UsageError(const std::string& message) {
  std::cerr << "polycrud-bench: " << message << " (see --help)\n";
  return 2;
}

// Could not run: message on stderr, exit status 1.
int RunError(const std::string& message) {
  std::cerr << "polycrud-bench: " << message << '\n';
  return 1;
}

std::string Fixed(double value, int digits) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << value;
  return out.str();
}

int Run(int argc, char** argv) {
  Options o;
  CLI::App app{
      "polycrud-bench: end-to-end load on one protocol face through its real client library.\n"
      "Closed loop (saturation) or open loop at a fixed arrival rate (latency from each\n"
      "request's intended send time). Prints a summary; --json writes the result document.\n"
      "Exit status: 0 run completed (even with error answers), 1 could not run, 2 usage."};
  // A later flag overrides an earlier one (handy for scripts that append overrides).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--protocol", o.protocol, "thrift|thrift-compact|grpc|soap|rest|web")
      ->required()
      ->check(CLI::IsMember(clients::KnownProtocols()));
  app.add_option("--host", o.host, "Server host")->capture_default_str();
  app.add_option("--port", o.port, "Server port")->required()->check(CLI::Range(1, 65535));
  app.add_option("--token", o.token, "Bearer token (needed by every operation but ping)")
      ->envname("POLYCRUD_TOKEN");
  app.add_option("--mix", o.mix_text,
                 "Operation weights, e.g. get=95,update=4,create=1 "
                 "(ping,get,batch_get,list,create,update,delete,search)")
      ->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "Ids per batch_get")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--list-limit", o.list_limit, "Page size of list")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--search-digits", o.search_digits,
                 "search: the prefix is \"user\" and this many digits of a key's seeded username "
                 "(6: 100 seeded users share it)")
      ->check(CLI::Range(0, 8))
      ->capture_default_str();
  app.add_option("--search-limit", o.search_limit, "Results per search (1-100)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--keys", o.keys,
                 "Key distribution over [min-id, max-id]: uniform, or zipf (rank 1 = hottest; "
                 "ranks map to ids by a fixed permutation)")
      ->check(CLI::IsMember({"uniform", "zipf"}))
      ->capture_default_str();
  app.add_option("--zipf-s", o.zipf_s, "Zipf exponent (> 0)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--min-id", o.min_id, "Smallest id drawn")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-id", o.max_id, "Largest id drawn (the seeded ids)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--connections", o.connections, "TCP connections to the server")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--io", o.io,
                 "fibers: each connection runs its client on a fiber of its own, many per "
                 "thread, and a thread waits for all its connections at once (epoll), as an "
                 "event-driven tool does; threads: a thread per --threads, blocking in each call")
      ->check(CLI::IsMember({"fibers", "threads"}))
      ->capture_default_str();
  app.add_option("--threads", o.threads,
                 "Client threads (default: fibers 2, at most --connections; threads = "
                 "connections). With threads, connections are spread over them and each thread "
                 "uses its connections in turn, one call at a time")
      ->check(CLI::Range(1, 1024));
  app.add_option("--mode", o.mode, "closed (saturation) or open (fixed arrival rate)")
      ->check(CLI::IsMember({"closed", "open"}))
      ->capture_default_str();
  app.add_option("--rate", o.rate, "Open loop: total arrivals per second")
      ->check(CLI::PositiveNumber);
  app.add_option("--arrivals", o.arrivals,
                 "Open loop: uniform (exact 1/rate intervals) or poisson (exponential gaps)")
      ->check(CLI::IsMember({"uniform", "poisson"}))
      ->capture_default_str();
  app.add_option("--warmup-s", o.warmup_s, "Warm-up before the measured window")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--duration-s", o.duration_s, "Measured window")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  app.add_option("--drain-s", o.drain_s,
                 "Open loop: how long after the window arrivals still due are sent (default "
                 "min(max(1, duration), 10))")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--seed", o.seed, "Seed of every random choice")
      ->check(CLI::Range(0u, 2'000'000'000u))
      ->capture_default_str();
  app.add_option("--metrics-url", o.metrics_url,
                 "Prometheus page of the server (cache hits/misses over the window), e.g. "
                 "http://127.0.0.1:8081/metrics");
  app.add_option("--redis-port", o.redis_port,
                 "Redis whose INFO keyspace_hits/misses to read (servers without /metrics)")
      ->check(CLI::Range(1, 65535));
  app.add_option("--redis-host", o.redis_host, "Host of --redis-port")->capture_default_str();
  app.add_option("--redis-user", o.redis_user,
                 "Redis ACL user of --redis-port, one allowed to run INFO (empty: the default "
                 "user)");
  app.add_option("--redis-password", o.redis_password,
                 "Password of --redis-user. Prefer the environment variable")
      ->envname("POLYCRUD_BENCH_REDIS_PASSWORD");
  app.add_option("--server-pid", o.server_pids,
                 "Server process whose CPU time (/proc/PID/stat) to read over the window; "
                 "PID,PID,... sums several (a gateway and the server behind it)")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(CLI::PositiveNumber);
  app.add_option("--timeout-ms", o.timeout_ms, "Per-call timeout (connect, send, receive)")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  app.add_option("--tls-ca", o.tls.ca,
                 "Connect over TLS, trusting this CA (thrift, thrift-compact, grpc, rest, web; "
                 "the server's certificate must name --host)");
  app.add_option("--tls-cert", o.tls.cert, "Client certificate, for mutual TLS");
  app.add_option("--tls-key", o.tls.key, "Private key of --tls-cert");
  app.add_option("--json", o.json_path, "Write the result document to FILE");
  app.add_option("--label", o.label, "Name of this run in the result");
  app.add_flag("--progress", o.progress,
               "Progress bar on stderr even when it is not a terminal (default: only on one)");
  app.add_flag("--progress-json", o.progress_json,
               "Instead of the bar, a JSON line on stderr every 0.5 s: phase, elapsed_s, "
               "total_s, calls, failed_calls, and requests_per_s, p50_ms and p99_ms of the "
               "calls since the previous line");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  const bool fibers = o.io == "fibers";
  if (o.threads == 0)
    o.threads = fibers ? std::min(o.connections, 2) : std::min(o.connections, 1024);
  if (o.threads > o.connections) return UsageError("--threads may not exceed --connections");
  if (o.max_id < o.min_id) return UsageError("--max-id is below --min-id");
  if (o.mode == "open" && o.rate <= 0) return UsageError("--mode open needs --rate");
  if (o.mode == "closed" && o.rate > 0) return UsageError("--rate applies to --mode open only");
  if (!o.metrics_url.empty() && o.redis_port != 0) {
    return UsageError("give --metrics-url or --redis-port, not both");
  }
  std::optional<OpMix> mix;
  try {
    mix = OpMix::Parse(o.mix_text);
  } catch (const std::invalid_argument& e) {
    return UsageError(e.what());
  }
  if (mix->needs_token() && o.token.empty()) {
    return UsageError("the mix needs --token (or POLYCRUD_TOKEN)");
  }
  Sources sources{.metrics = std::nullopt,
                  .redis_port = o.redis_port,
                  .redis_host = o.redis_host,
                  .redis_user = o.redis_user,
                  .redis_password = o.redis_password,
                  .server_pids = o.server_pids,
                  .server_port = o.port};
  if (!o.metrics_url.empty()) {
    sources.metrics = ParseHttpUrl(o.metrics_url);
    if (!sources.metrics) return UsageError("--metrics-url must be http://host[:port]/path");
  }
  if (o.drain_s < 0) o.drain_s = std::min(std::max(1.0, o.duration_s), 10.0);
  std::signal(SIGPIPE, SIG_IGN);

  const Config config{
      .options = &o,
      .mix = *mix,
      .keys = o.keys == "zipf" ? KeyChooser::Zipf(o.min_id, o.max_id, o.zipf_s)
                               : KeyChooser::Uniform(o.min_id, o.max_id),
      .run_tag =
          Base36(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count())) +
          "-" + Base36(o.seed)};

  // Connect every connection and check that a polycrud server answers.
  // Fibers: a worker per connection, spread over the threads' schedulers;
  // threads: a worker per thread, with its share of the connections.
  const int worker_count = fibers ? o.connections : o.threads;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < worker_count; ++i) {
    workers.push_back(std::make_unique<Worker>());
    workers.back()->index = i;
    if (o.progress_json) workers.back()->live = std::make_unique<LatencyHistogram>();
    workers.back()->rng.seed(static_cast<std::uint64_t>(o.seed) * 1'000'003 +
                             static_cast<std::uint64_t>(i));
  }
  const clients::ClientOptions client_options{.host = o.host,
                                              .port = o.port,
                                              .rest_prefix = "",
                                              .thrift_compact = false,
                                              .timeout_ms = o.timeout_ms,
                                              .tls = o.tls};
  const std::string where = o.protocol + " at " + o.host + ":" + std::to_string(o.port);
  for (int c = 0; c < o.connections; ++c) {
    std::unique_ptr<ProtocolClient> client;
    try {
      client = clients::MakeProtocolClient(o.protocol, client_options);
    } catch (const std::exception& e) {
      return RunError("cannot connect to " + where + ": " + e.what());
    }
    const auto ping = client->Ping();
    if (!ping.ok()) {
      return RunError("no polycrud server answers ping on " + where + ": " +
                      std::string(StatusCodeName(ping.status.code)) + " " + ping.status.message);
    }
    if (c == 0 && mix->needs_token()) {
      const auto probe = client->GetUser(o.token, o.min_id);
      if (probe.status.code == StatusCode::kUnauthenticated) {
        return RunError("the server rejects the token (UNAUTHENTICATED)");
      }
      if (probe.status.transport_failure) {
        return RunError("the first call failed on " + where + ": " + probe.status.message);
      }
    }
    workers[static_cast<std::size_t>(c % worker_count)]->clients.push_back(std::move(client));
  }
  try {
    (void)ReadCache(sources);
  } catch (const std::exception& e) {
    return RunError(std::string("cache counters: ") + e.what());
  }
  for (const int pid : o.server_pids) {
    if (!ProcessCpuSeconds(pid))
      return RunError("cannot read /proc/" + std::to_string(pid) + "/stat");
  }

  Timeline t;
  t.t0 = Clock::now() + std::chrono::milliseconds(20);
  t.w0 =
      t.t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup_s));
  t.w1 = t.w0 +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  t.drain =
      t.w1 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.drain_s));
  std::optional<ArrivalSchedule> schedule;
  if (o.mode == "open") {
    schedule.emplace(o.rate, o.arrivals == "poisson" ? Arrivals::kPoisson : Arrivals::kUniform,
                     static_cast<std::uint64_t>(o.seed));
  }

  std::atomic<int> finished{0};
  const auto work = [&](Worker* w) {
    if (schedule) {
      OpenLoop(*w, config, t, *schedule);
    } else {
      ClosedLoop(*w, config, t);
    }
    finished.fetch_add(1);
  };
  std::vector<std::thread> threads;
  std::string thread_error;
  std::mutex thread_error_mutex;
  for (int i = 0; i < o.threads; ++i) {
    if (!fibers) {
      threads.emplace_back(work, workers[static_cast<std::size_t>(i)].get());
      continue;
    }
    threads.emplace_back([&, i] {
      try {
        FiberScheduler scheduler;
        for (int w = i; w < worker_count; w += o.threads) {
          scheduler.Spawn([&, w] { work(workers[static_cast<std::size_t>(w)].get()); });
        }
        scheduler.Run();
      } catch (const std::exception& e) {
        const std::lock_guard lock(thread_error_mutex);
        thread_error = e.what();
        finished.store(worker_count);
      }
    });
  }

  const Progress::Style style = o.progress_json                            ? Progress::Style::kJson
                                : o.progress || isatty(STDERR_FILENO) != 0 ? Progress::Style::kBar
                                                                           : Progress::Style::kNone;
  Progress progress(style, t);
  const auto tick =
      o.progress_json ? std::chrono::milliseconds(500) : std::chrono::milliseconds(200);
  // The latencies every worker recorded since the last tick (--progress-json).
  const auto take_live = [&] {
    LatencyHistogram interval;
    for (const auto& w : workers) {
      if (!w->live) continue;
      const std::lock_guard lock(w->live_mutex);
      interval.Merge(*w->live);
      w->live->Clear();
    }
    return interval;
  };
  const auto sum = [&](std::atomic<std::int64_t> Worker::*counter) {
    std::int64_t total = 0;
    for (const auto& w : workers) total += ((*w).*counter).load(std::memory_order_relaxed);
    return total;
  };
  // Draws until `until` (or until every thread finished, if `until` is nullopt).
  const auto wait = [&](std::optional<Clock::time_point> until, const char* phase) {
    while (until ? Clock::now() < *until : finished.load() < worker_count) {
      Clock::time_point next = Clock::now() + tick;
      if (until) next = std::min(next, *until);
      std::this_thread::sleep_until(next);
      const LatencyHistogram interval = take_live();
      progress.Draw(sum(&Worker::calls), sum(&Worker::failures), phase, &interval);
    }
  };
  Snapshot before;
  Snapshot after;
  std::string snapshot_error;
  wait(t.w0, "warm-up");
  try {
    before = SnapshotAtStart(sources);
  } catch (const std::exception& e) {
    snapshot_error = e.what();
  }
  wait(t.w1, "measuring");
  try {
    after = SnapshotAtEnd(sources);
  } catch (const std::exception& e) {
    snapshot_error = e.what();
  }
  wait(std::nullopt, schedule ? "draining" : "finishing");
  for (auto& thread : threads) thread.join();
  progress.Finish();
  if (!thread_error.empty()) return RunError("the load stopped: " + thread_error);
  if (!snapshot_error.empty()) {
    std::cerr << "polycrud-bench: warning: cache counters unavailable: " << snapshot_error << '\n';
  }

  // Merge.
  LatencyHistogram all;
  std::array<LatencyHistogram, kOpCount> by_op;
  std::array<std::int64_t, kOpCount> op_requests{};
  std::array<std::int64_t, kOpCount> op_errors{};
  std::array<std::int64_t, kErrorKinds> errors{};
  std::int64_t window_completions = 0, window_arrivals = 0, completed_by_end = 0, drained = 0,
               not_sent = 0;
  for (const auto& w : workers) {
    all.Merge(w->all);
    for (std::size_t i = 0; i < kOpCount; ++i) {
      if (w->by_op[i]) by_op[i].Merge(*w->by_op[i]);
      op_requests[i] += w->op_requests[i];
      op_errors[i] += w->op_errors[i];
    }
    for (std::size_t k = 0; k < kErrorKinds; ++k) errors[k] += w->errors[k];
    window_completions += w->window_completions;
    window_arrivals += w->window_arrivals;
    completed_by_end += w->completed_by_end;
    drained += w->drained;
    not_sent += w->not_sent;
  }
  const double duration = std::chrono::duration<double>(t.w1 - t.w0).count();
  const std::int64_t requests = all.count();
  const double throughput =
      static_cast<double>(schedule ? completed_by_end : window_completions) / duration;
  const double per_request_div = static_cast<double>(std::max<std::int64_t>(window_completions, 1));
  const SocketBytes bytes = BytesBetween(before.sockets, after.sockets);
  std::int64_t error_count = 0;
  for (std::int64_t e : errors) error_count += e;

  Json doc;
  doc["label"] = o.label;
  doc["protocol"] = o.protocol;
  doc["tls"] = !o.tls.ca.empty();
  doc["mode"] = o.mode;
  doc["target_rate"] = schedule ? o.rate : 0.0;
  if (schedule) {
    const std::int64_t backlog = window_arrivals - completed_by_end;
    doc["sustained"] = static_cast<double>(completed_by_end) >= 0.99 * o.rate * duration &&
                       static_cast<double>(backlog) < 0.01 * static_cast<double>(window_arrivals);
  } else {
    doc["sustained"] = nullptr;
  }
  doc["connections"] = o.connections;
  doc["threads"] = o.threads;
  doc["io"] = o.io;
  Json mix_json = Json::object();
  for (std::size_t i = 0; i < kOpCount; ++i) {
    if (mix->weight(static_cast<Op>(i)) > 0) {
      mix_json[std::string(kOpNames[i])] = mix->weight(static_cast<Op>(i));
    }
  }
  doc["mix"] = mix_json;
  doc["keys"] = Json{{"dist", o.keys},
                     {"s", o.keys == "zipf" ? Json(o.zipf_s) : Json(nullptr)},
                     {"min_id", o.min_id},
                     {"max_id", o.max_id}};
  doc["warmup_s"] = o.warmup_s;
  doc["duration_s"] = duration;
  doc["requests"] = requests;
  doc["throughput_rps"] = throughput;
  doc["latency_ms"] = LatencyJson(all);
  Json ops = Json::object();
  for (std::size_t i = 0; i < kOpCount; ++i) {
    if (op_requests[i] == 0 && mix->weight(static_cast<Op>(i)) == 0) continue;
    ops[std::string(kOpNames[i])] = Json{{"requests", op_requests[i]},
                                         {"errors", op_errors[i]},
                                         {"latency_ms", LatencyJson(by_op[i])}};
  }
  doc["ops"] = ops;
  Json errors_json = Json::object();
  for (std::size_t k = 0; k < kErrorKinds; ++k) {
    if (errors[k] != 0) errors_json[ErrorKindName(k)] = errors[k];
  }
  doc["errors"] = errors_json;
  doc["error_count"] = error_count;
  doc["bytes_sent_per_request"] = static_cast<double>(bytes.sent) / per_request_div;
  doc["bytes_received_per_request"] = static_cast<double>(bytes.received) / per_request_div;
  if (before.cache && after.cache) {
    const double hits = static_cast<double>(after.cache->hits - before.cache->hits);
    const double misses = static_cast<double>(after.cache->misses - before.cache->misses);
    doc["cache"] = Json{{"hits", after.cache->hits - before.cache->hits},
                        {"misses", after.cache->misses - before.cache->misses},
                        {"hit_ratio", hits + misses > 0 ? Json(hits / (hits + misses)) : Json()},
                        {"source", sources.metrics ? "metrics" : "redis"}};
    if (sources.metrics) {
      doc["cache"]["negative_hits"] = after.cache->negative_hits - before.cache->negative_hits;
    }
  } else {
    doc["cache"] = nullptr;
  }
  if (before.server_cpu_s && after.server_cpu_s) {
    const double s = *after.server_cpu_s - *before.server_cpu_s;
    doc["server_cpu"] = Json{{"seconds", s}, {"per_request_us", s * 1e6 / per_request_div}};
  } else {
    doc["server_cpu"] = nullptr;
  }
  {
    const double s = after.client_cpu_s - before.client_cpu_s;
    doc["client_cpu"] = Json{{"seconds", s}, {"per_request_us", s * 1e6 / per_request_div}};
  }
  // Extensions of the contract.
  doc["window_completions"] = window_completions;
  std::size_t kept = 0;  // sockets open through the whole window (keep-alive held)
  for (const auto& entry : after.sockets) kept += before.sockets.count(entry.first);
  doc["sockets"] =
      Json{{"start", before.sockets.size()}, {"end", after.sockets.size()}, {"kept", kept}};
  if (schedule) {
    doc["open_loop"] = Json{{"arrivals", o.arrivals},
                            {"window_arrivals", window_arrivals},
                            {"completed_in_window", completed_by_end},
                            {"backlog_at_end", window_arrivals - completed_by_end},
                            {"drained", drained},
                            {"not_sent", not_sent}};
  } else {
    doc["open_loop"] = nullptr;
  }
  doc["server"] = o.host + ":" + std::to_string(o.port);
  doc["seed"] = o.seed;
  Json buckets = Json::array();
  for (const auto& [upper, count] : all.NonEmptyBuckets()) buckets.push_back({upper, count});
  doc["histogram_us"] = buckets;

  // Summary.
  std::cout << "polycrud-bench " << (o.label.empty() ? "" : o.label + ": ") << o.protocol << " "
            << o.mode << " loop";
  if (schedule) std::cout << " at " << Fixed(o.rate, 0) << "/s (" << o.arrivals << ")";
  std::cout << ", " << o.connections << " connections, " << o.threads << " threads (" << o.io
            << "), mix " << o.mix_text << ", keys " << o.keys
            << (o.keys == "zipf" ? "(s=" + Fixed(o.zipf_s, 2) + ")" : "") << " " << o.min_id << ".."
            << o.max_id << "\n";
  std::cout << "  window " << Fixed(duration, 3) << " s: " << requests << " requests, "
            << Fixed(throughput, 1) << " req/s, " << error_count << " errors";
  for (std::size_t k = 0; k < kErrorKinds; ++k) {
    if (errors[k] != 0) std::cout << " " << ErrorKindName(k) << "=" << errors[k];
  }
  std::cout << "\n";
  if (schedule) {
    std::cout << "  open loop: " << window_arrivals << " arrivals, " << completed_by_end
              << " completed in the window, backlog " << window_arrivals - completed_by_end
              << " (drained " << drained << ", not sent " << not_sent << "), sustained "
              << (doc["sustained"].get<bool>() ? "yes" : "no") << "\n";
  }
  const auto print_latency = [](const std::string& name, const LatencyHistogram& h) {
    std::cout << "  " << name << std::string(name.size() < 10 ? 10 - name.size() : 1, ' ')
              << "ms  p50 " << Fixed(h.PercentileUs(0.5) / 1000, 3) << "  p90 "
              << Fixed(h.PercentileUs(0.9) / 1000, 3) << "  p99 "
              << Fixed(h.PercentileUs(0.99) / 1000, 3) << "  p99.9 "
              << Fixed(h.PercentileUs(0.999) / 1000, 3) << "  max "
              << Fixed(h.PercentileUs(1.0) / 1000, 3) << "  mean " << Fixed(h.mean_ns() / 1e6, 3)
              << "  (" << h.count() << ")\n";
  };
  print_latency("all", all);
  for (std::size_t i = 0; i < kOpCount; ++i) {
    if (op_requests[i] != 0) print_latency(std::string(kOpNames[i]), by_op[i]);
  }
  std::cout << "  bytes/request: sent " << Fixed(doc["bytes_sent_per_request"].get<double>(), 1)
            << ", received " << Fixed(doc["bytes_received_per_request"].get<double>(), 1) << "\n";
  if (!doc["cache"].is_null()) {
    std::cout << "  cache (" << doc["cache"]["source"].get<std::string>() << "): hits "
              << doc["cache"]["hits"] << ", misses " << doc["cache"]["misses"];
    if (!doc["cache"]["hit_ratio"].is_null()) {
      std::cout << ", hit ratio " << Fixed(doc["cache"]["hit_ratio"].get<double>(), 4);
    }
    std::cout << "\n";
  }
  if (!doc["server_cpu"].is_null()) {
    std::cout << "  server CPU: " << Fixed(doc["server_cpu"]["seconds"].get<double>(), 2) << " s, "
              << Fixed(doc["server_cpu"]["per_request_us"].get<double>(), 1) << " us/request\n";
  }
  std::cout << "  client CPU: " << Fixed(doc["client_cpu"]["seconds"].get<double>(), 2) << " s, "
            << Fixed(doc["client_cpu"]["per_request_us"].get<double>(), 1) << " us/request\n";

  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    out << doc.dump(2) << '\n';
    if (!out) return RunError("cannot write " + o.json_path);
  }
  return 0;
}

}  // namespace
}  // namespace polycrud::bench

int main(int argc, char** argv) {
  try {
    return polycrud::bench::Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "polycrud-bench: " << e.what() << '\n';
    return 1;
  }
}
