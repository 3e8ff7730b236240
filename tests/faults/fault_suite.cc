// The fault suite: clients on all four protocols run random creates, reads,
// conditional updates and deletes on a small hot set of users while one fault
// at a time is injected into a private stack (its own MariaDB, Redis and
// polycrud-server): Redis SIGKILL and restart, Redis SIGSTOP for longer than
// the server's Redis timeout, MariaDB SIGKILL and restart, the server SIGKILL
// and restart on the same ports, and the MariaDB pool held by slow queries
// (a session that write-locks the users table). Every call and its answer
// is recorded; after each fault, once everything is quiet, a checker
// verifies:
//   - no acknowledged write is lost (MariaDB holds every acknowledged
//     update's version or a newer one, no acknowledged delete's row, every
//     acknowledged create's row unless a delete of it was tried);
//   - no read returned a version that was never written (each (id, version)
//     seen carries the one full_name written for it);
//   - every client's reads of a user return the newest version that client
//     already saw (read or wrote) or newer; "not found" only once a delete
//     of it was tried; with a staleness allowance (--stale-allowance-ms; by
//     default the layout's near-cache lifetime with --cluster, none on a
//     private stack) an older version is counted, not failed, when the read
//     began at most that long after the client first saw a newer one;
//   - once quiet, every cached entry equals MariaDB's row or reads as absent;
//   - full service after the fault: every protocol answers again, and no
//     call fails in the last second of the run.
// Per fault it reports the calls, the errors by code, the longest call, the
// seconds until full service and until the cache converged. Exit status 0
// when every check passed, 1 otherwise, 2 on bad usage.
//
// With --cluster DIR the same load and checks run against the multi-host
// layout (deploy/cluster/cluster.sh) whose state is in DIR, from its client
// host, through its load balancer, and the faults are its drills: a server
// host killed and restarted, a cache host (a Redis master and a replica of
// another) killed and restarted, the Galera writer's host killed and
// restarted, a server host cut off from a cache host and healed.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <thrift/Thrift.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "clients/protocol_client.h"
#include "tests/support/server_process.h"
#include "tests/support/stack.h"

namespace polycrud::testing {
namespace {

using Clock = std::chrono::steady_clock;
using clients::CallStatus;
using clients::MakeProtocolClient;
using clients::ProtocolClient;

const std::vector<std::string> kProtocols = {"thrift", "grpc", "soap", "rest"};

struct Options {
  std::vector<std::string> faults;  // empty: every fault of the target
  double before_s = 2;
  double hold_s = 3;
  double after_s = 5;
  int rounds = 1;
  int clients_per_protocol = 2;
  int hot_users = 40;
  int timeout_ms = 2000;
  std::string report_path;
  std::string cluster_dir;  // the multi-host layout's state folder; empty: a private stack
  std::string admin_token = kAdminToken;  // the layout's own with --cluster
  double stale_allowance_ms = -1;         // < 0: the target's own
};

// ------------------------------------------------------------ the record ----

enum class Op { kCreate, kGet, kBatchGet, kUpdate, kDelete };

const char* OpName(Op op) {
  switch (op) {
    case Op::kCreate:
      return "create";
    case Op::kGet:
      return "get";
    case Op::kBatchGet:
      return "batch_get";
    case Op::kUpdate:
      return "update";
    case Op::kDelete:
      return "delete";
  }
  return "?";
}

struct Seen {
  std::int64_t id = 0;
  std::int64_t version = 0;
  std::string full_name;
};

struct Call {
  int client = 0;
  Op op = Op::kGet;
  std::vector<std::int64_t> ids;  // create: the new id once known
  std::string sent_name;          // create/update: the full_name sent
  double start_s = 0;             // since the round started
  double end_s = 0;
  StatusCode code = StatusCode::kOk;
  bool transport_failure = false;
  std::vector<Seen> seen;  // users in the answer (reads, create, update)

  bool acked() const { return code == StatusCode::kOk; }
  // The server may have applied it: an answer of success, or none at all,
  // or UNAVAILABLE / INTERNAL (the outcome of the write is unknown).
  bool maybe_applied() const {
    return acked() || transport_failure || code == StatusCode::kUnavailable ||
           code == StatusCode::kInternal;
  }
};

// The ids clients work on: the most recent `hot` of them are picked from.
class HotSet {
 public:
  explicit HotSet(std::size_t hot) : hot_(hot) {}
  void Add(std::int64_t id) {
    std::lock_guard lock(mu_);
    ids_.push_back(id);
  }
  std::int64_t Pick(std::mt19937_64& rng) const {
    std::lock_guard lock(mu_);
    const std::size_t n = std::min(hot_, ids_.size());
    std::uniform_int_distribution<std::size_t> pick(ids_.size() - n, ids_.size() - 1);
    return ids_[pick(rng)];
  }
  std::vector<std::int64_t> All() const {
    std::lock_guard lock(mu_);
    return ids_;
  }

 private:
  const std::size_t hot_;
  mutable std::mutex mu_;
  std::vector<std::int64_t> ids_;
};

// --------------------------------------------------------------- clients ----

class Workload {
 public:
  Workload(const Options& options, HotSet& hot,
           std::function<clients::ClientOptions(const std::string&)> endpoint)
      : options_(options), hot_(hot), endpoint_(std::move(endpoint)) {}

  void Start() {
    started_ = Clock::now();
    stop_ = false;
    // Sized before any thread starts: each writes its own element.
    records_.assign(kProtocols.size() * static_cast<std::size_t>(options_.clients_per_protocol),
                    {});
    int client = 0;
    for (const std::string& protocol : kProtocols) {
      for (int i = 0; i < options_.clients_per_protocol; ++i, ++client) {
        threads_.emplace_back([this, protocol, client] { Run(protocol, client); });
      }
    }
  }

  // Stops the clients; returns every call, each client's in order.
  std::vector<std::vector<Call>> Stop() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    return std::move(records_);
  }

  double Now() const { return std::chrono::duration<double>(Clock::now() - started_).count(); }
  const std::string& protocol_of(int client) const {
    return kProtocols[static_cast<std::size_t>(client / options_.clients_per_protocol)];
  }

 private:
  void Run(const std::string& protocol, int client) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(client) * 7919 + 17);
    std::uniform_int_distribution<int> percent(0, 99);
    std::map<std::int64_t, std::int64_t> last_version;  // this client's newest seen
    std::unique_ptr<ProtocolClient> c;
    std::vector<Call>& out = records_[static_cast<std::size_t>(client)];
    int seq = 0;
    while (!stop_) {
      if (c == nullptr) {
        try {
          clients::ClientOptions endpoint = endpoint_(protocol);
          endpoint.timeout_ms = options_.timeout_ms;
          c = MakeProtocolClient(protocol, endpoint);
        } catch (const std::exception&) {
          // The server is down: a connection refused is a failed call too.
          Call call{.client = client, .op = Op::kGet, .start_s = Now()};
          call.end_s = call.start_s;
          call.code = StatusCode::kInternal;
          call.transport_failure = true;
          out.push_back(std::move(call));
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
      }
      const int r = percent(rng);
      Call call{.client = client};
      const std::string name = "f" + std::to_string(client) + "." + std::to_string(++seq);
      call.start_s = Now();
      CallStatus status;
      if (r < 5) {
        call.op = Op::kCreate;
        call.sent_name = name;
        const std::string user = "fault" + std::to_string(client) + "x" + std::to_string(seq) +
                                 "r" + std::to_string(run_tag_);
        auto o =
            c->CreateUser(options_.admin_token,
                          {.username = user, .email = user + "@example.com", .full_name = name});
        status = o.status;
        if (o.ok()) {
          call.ids.push_back(o.value->id);
          call.seen.push_back({o.value->id, o.value->version, o.value->full_name});
          hot_.Add(o.value->id);
        }
      } else if (r < 50) {
        call.op = Op::kGet;
        call.ids.push_back(hot_.Pick(rng));
        auto o = c->GetUser(options_.admin_token, call.ids[0]);
        status = o.status;
        if (o.ok()) call.seen.push_back({o.value->id, o.value->version, o.value->full_name});
      } else if (r < 60) {
        call.op = Op::kBatchGet;
        for (int i = 0; i < 3; ++i) call.ids.push_back(hot_.Pick(rng));
        auto o = c->BatchGetUsers(options_.admin_token, call.ids);
        status = o.status;
        if (o.ok()) {
          for (const User& u : *o.value) call.seen.push_back({u.id, u.version, u.full_name});
        }
      } else if (r < 97) {
        call.op = Op::kUpdate;
        call.sent_name = name;
        call.ids.push_back(hot_.Pick(rng));
        // Mostly conditional on the newest version this client saw.
        const std::int64_t expected = percent(rng) < 80 ? last_version[call.ids[0]] : 0;
        auto o = c->UpdateUser(options_.admin_token, call.ids[0],
                               {.full_name = name, .expected_version = expected});
        status = o.status;
        if (o.ok()) call.seen.push_back({o.value->id, o.value->version, o.value->full_name});
      } else {
        call.op = Op::kDelete;
        call.ids.push_back(hot_.Pick(rng));
        status = c->DeleteUser(options_.admin_token, call.ids[0]).status;
      }
      call.end_s = Now();
      call.code = status.code;
      call.transport_failure = status.transport_failure;
      for (const Seen& s : call.seen) {
        last_version[s.id] = std::max(last_version[s.id], s.version);
      }
      if (call.transport_failure) {
        c.reset();  // a new connection next time
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      } else if (!call.acked() && (call.code == StatusCode::kUnavailable ||
                                   call.code == StatusCode::kResourceExhausted)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the retry hint, shortened
      }
      out.push_back(std::move(call));
    }
  }

  const Options& options_;
  HotSet& hot_;
  std::function<clients::ClientOptions(const std::string&)> endpoint_;
  Clock::time_point started_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::vector<std::vector<Call>> records_;
  const long run_tag_ = static_cast<long>(std::random_device{}() % 1'000'000);
};

// ------------------------------------------------------------ the checker ----

struct Row {
  std::int64_t version = 0;
  std::string full_name;
};

// Runs SQL against the target's database; tab-separated rows, no header.
using SqlRunner = std::function<std::string(const std::string& sql)>;
// GETs keys on the target's cache; nullopt for each key that is absent.
using CacheReader =
    std::function<std::vector<std::optional<std::string>>(const std::vector<std::string>& keys)>;

// The rows of `ids` in MariaDB.
std::map<std::int64_t, Row> ReadRows(const SqlRunner& sql, const std::vector<std::int64_t>& ids) {
  std::map<std::int64_t, Row> rows;
  for (std::size_t at = 0; at < ids.size(); at += 500) {
    std::string list;
    for (std::size_t i = at; i < std::min(ids.size(), at + 500); ++i) {
      list += (list.empty() ? "" : ",") + std::to_string(ids[i]);
    }
    std::istringstream out(
        sql("SELECT id, version, full_name FROM users WHERE id IN (" + list + ")"));
    std::string line;
    while (std::getline(out, line)) {
      const std::size_t t1 = line.find('\t');
      const std::size_t t2 = line.find('\t', t1 + 1);
      if (t1 == std::string::npos || t2 == std::string::npos) continue;
      rows[std::stoll(line.substr(0, t1))] = {std::stoll(line.substr(t1 + 1, t2 - t1 - 1)),
                                              line.substr(t2 + 1)};
    }
  }
  return rows;
}

// A user entry's version and full_name; nullopt for nothing, a tombstone,
// a negative entry, a write intent or anything else that reads as absent.
std::optional<Row> CachedUser(const std::optional<std::string>& value) {
  if (!value || !value->starts_with("U|")) return std::nullopt;
  // U|version|id|created|updated|ulen|elen|<username><email><full_name>
  std::vector<std::int64_t> fields;
  std::size_t pos = 2;
  for (int i = 0; i < 6; ++i) {
    const std::size_t bar = value->find('|', pos);
    if (bar == std::string::npos) return std::nullopt;
    fields.push_back(std::stoll(value->substr(pos, bar - pos)));
    pos = bar + 1;
  }
  const std::size_t name_at = pos + static_cast<std::size_t>(fields[4] + fields[5]);
  if (name_at > value->size()) return std::nullopt;
  return Row{fields[0], value->substr(name_at)};
}

struct Verdict {
  std::vector<std::string> violations;
  std::size_t stale_reads = 0;  // older than seen, within the allowance
  double max_stale_ms = 0;      // from first seeing the newer version to the read's start
  void Fail(std::string what) {
    if (violations.size() < 20) violations.push_back(std::move(what));
  }
};

// What the checks of earlier rounds learnt: the rounds share the users.
struct Knowledge {
  std::map<std::int64_t, std::set<std::string>> names_sent;              // every full_name written
  std::map<std::pair<std::int64_t, std::int64_t>, std::string> content;  // (id, version)
  std::set<std::int64_t> deleted;  // ids some delete was tried on
};

// `allowance_ms`: how long after a client first saw a version a read of an
// older one is still counted as stale rather than failed (0: never).
void CheckHistory(const std::vector<std::vector<Call>>& record,
                  const std::map<std::int64_t, Row>& rows, Knowledge& known, double allowance_ms,
                  Verdict& verdict) {
  // Every delete tried, by id, with its start time (earlier rounds: -1).
  std::map<std::int64_t, double> first_delete;
  for (const std::int64_t id : known.deleted) first_delete[id] = -1;
  std::map<std::int64_t, std::set<std::string>>& names_sent = known.names_sent;
  for (const auto& calls : record) {
    for (const Call& c : calls) {
      if (c.op == Op::kDelete && c.maybe_applied()) {
        auto [it, fresh] = first_delete.emplace(c.ids[0], c.start_s);
        if (!fresh) it->second = std::min(it->second, c.start_s);
        known.deleted.insert(c.ids[0]);
      }
      if (c.op == Op::kUpdate) names_sent[c.ids[0]].insert(c.sent_name);
      if (c.op == Op::kCreate && c.acked()) names_sent[c.ids[0]].insert(c.sent_name);
    }
  }
  const auto deleted_before = [&](std::int64_t id, double t) {
    auto it = first_delete.find(id);
    return it != first_delete.end() && it->second <= t;
  };

  auto& content = known.content;
  for (const auto& calls : record) {
    std::map<std::int64_t, std::int64_t> newest;  // this client's newest seen version
    // When this client first saw each (id, version): the end of that call.
    std::map<std::pair<std::int64_t, std::int64_t>, double> seen_at;
    // The earliest time this client saw a version of `id` newer than `version`.
    const auto first_newer = [&seen_at](std::int64_t id, std::int64_t version) {
      double t = 1e18;
      for (auto it = seen_at.upper_bound({id, version});
           it != seen_at.end() && it->first.first == id; ++it) {
        t = std::min(t, it->second);
      }
      return t;
    };
    for (const Call& c : calls) {
      const std::string where = std::string(OpName(c.op)) + " by client " +
                                std::to_string(c.client) + " at " + std::to_string(c.start_s) +
                                " s";
      // No acknowledged write lost.
      if (c.acked() && !c.ids.empty()) {
        const std::int64_t id = c.ids[0];
        auto row = rows.find(id);
        if (c.op == Op::kDelete && row != rows.end()) {
          verdict.Fail(where + ": acknowledged delete of " + std::to_string(id) +
                       " but the row is still there");
        }
        if ((c.op == Op::kUpdate || c.op == Op::kCreate) && !deleted_before(id, 1e18)) {
          if (row == rows.end()) {
            verdict.Fail(where + ": acknowledged write of " + std::to_string(id) +
                         " but the row is gone and no delete was tried");
          } else if (!c.seen.empty() && (row->second.version < c.seen[0].version ||
                                         (row->second.version == c.seen[0].version &&
                                          row->second.full_name != c.seen[0].full_name))) {
            verdict.Fail(where + ": acknowledged version " + std::to_string(c.seen[0].version) +
                         " of " + std::to_string(id) + " lost; MariaDB holds version " +
                         std::to_string(row->second.version));
          }
        }
      }
      // No version that was never written; one content per version.
      for (const Seen& s : c.seen) {
        if (!names_sent[s.id].contains(s.full_name)) {
          verdict.Fail(where + ": user " + std::to_string(s.id) + " version " +
                       std::to_string(s.version) + " has full_name '" + s.full_name +
                       "', which no client wrote");
        }
        auto [it, fresh] = content.emplace(std::make_pair(s.id, s.version), s.full_name);
        if (!fresh && it->second != s.full_name) {
          verdict.Fail(where + ": user " + std::to_string(s.id) + " version " +
                       std::to_string(s.version) + " seen as both '" + it->second + "' and '" +
                       s.full_name + "'");
        }
        auto row = rows.find(s.id);
        if (row != rows.end() && s.version > row->second.version) {
          verdict.Fail(where + ": user " + std::to_string(s.id) + " version " +
                       std::to_string(s.version) + " is newer than MariaDB's " +
                       std::to_string(row->second.version));
        }
      }
      // Each client's reads never go back.
      if (c.acked() && (c.op == Op::kGet || c.op == Op::kBatchGet)) {
        std::set<std::int64_t> returned;
        for (const Seen& s : c.seen) {
          returned.insert(s.id);
          if (s.version < newest[s.id]) {
            const double stale_ms = (c.start_s - first_newer(s.id, s.version)) * 1000;
            if (stale_ms <= allowance_ms) {
              ++verdict.stale_reads;
              verdict.max_stale_ms = std::max(verdict.max_stale_ms, stale_ms);
            } else {
              char buf[64];
              std::snprintf(buf, sizeof buf, "%.0f ms", stale_ms);
              verdict.Fail(where + ": read version " + std::to_string(s.version) + " of user " +
                           std::to_string(s.id) + " " + buf + " after seeing version " +
                           std::to_string(newest[s.id]));
            }
          }
        }
        for (const std::int64_t id : c.ids) {
          if (!returned.contains(id) && newest[id] > 0 && !deleted_before(id, c.end_s)) {
            verdict.Fail(where + ": user " + std::to_string(id) +
                         " not found after seeing version " + std::to_string(newest[id]) +
                         ", and no delete of it was tried");
          }
        }
      }
      if (c.op == Op::kGet && c.code == StatusCode::kNotFound && newest[c.ids[0]] > 0 &&
          !deleted_before(c.ids[0], c.end_s)) {
        verdict.Fail(where + ": user " + std::to_string(c.ids[0]) +
                     " not found after seeing version " + std::to_string(newest[c.ids[0]]) +
                     ", and no delete of it was tried");
      }
      if (c.acked()) {
        for (const Seen& s : c.seen) {
          newest[s.id] = std::max(newest[s.id], s.version);
          seen_at.emplace(std::make_pair(s.id, s.version), c.end_s);
        }
      }
    }
  }
}

// Seconds (polling up to `limit_s`) until every cached entry of `ids` equals
// MariaDB's row or reads as absent; the ids that still differ go to verdict.
double WaitForCacheConvergence(const SqlRunner& sql, const CacheReader& cache,
                               const std::vector<std::int64_t>& ids, double limit_s,
                               Verdict& verdict) {
  const auto start = Clock::now();
  std::vector<std::string> stale;
  while (true) {
    stale.clear();
    const std::map<std::int64_t, Row> rows = ReadRows(sql, ids);
    std::vector<std::string> keys;
    keys.reserve(ids.size());
    for (const std::int64_t id : ids) keys.push_back("user:" + std::to_string(id));
    const std::vector<std::optional<std::string>> values = cache(keys);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::int64_t id = ids[i];
      const std::optional<Row> cached = CachedUser(values[i]);
      if (!cached) continue;
      auto row = rows.find(id);
      if (row == rows.end()) {
        stale.push_back("user " + std::to_string(id) + " is cached at version " +
                        std::to_string(cached->version) + " but deleted in MariaDB");
      } else if (cached->version != row->second.version ||
                 cached->full_name != row->second.full_name) {
        stale.push_back("user " + std::to_string(id) + " is cached at version " +
                        std::to_string(cached->version) + ", MariaDB holds " +
                        std::to_string(row->second.version));
      }
    }
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (stale.empty()) return waited;
    if (waited >= limit_s) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (std::string& s : stale) verdict.Fail("once quiet: " + s);
  return limit_s;
}

// ---------------------------------------------------------------- faults ----

struct Fault {
  std::string name;
  std::string what;
  std::function<void()> inject;
  std::function<void()> heal;
  // Some call must fail while it lasts; none failing means the fault never
  // reached the load (a drill aimed at a host that no longer matters).
  bool must_fail_calls = false;
};

// Where the load goes, what the checker reads and which faults exist.
class Target {
 public:
  virtual ~Target() = default;
  // Host and port of `protocol`'s face.
  virtual clients::ClientOptions Endpoint(const std::string& protocol) const = 0;
  virtual std::string Sql(const std::string& sql) = 0;
  virtual std::vector<std::optional<std::string>> CacheGet(
      const std::vector<std::string>& keys) = 0;
  virtual std::vector<Fault> Faults(const Options& options) = 0;
  // The staleness a client may see by design, in ms (see CheckHistory).
  virtual double StaleAllowanceMs() const { return 0; }
};

// A private MariaDB, Redis and polycrud-server on 127.0.0.1.
class LocalTarget final : public Target {
 public:
  LocalTarget() { StartServer(); }

  clients::ClientOptions Endpoint(const std::string& protocol) const override {
    // The ports stay the same across a server restart.
    for (const auto& [name, port] : ports_) {
      if (name == protocol) return {.port = port};
    }
    throw std::invalid_argument("no face " + protocol);
  }
  std::string Sql(const std::string& sql) override { return MysqlQuery(mysql_.port(), sql); }
  std::vector<std::optional<std::string>> CacheGet(const std::vector<std::string>& keys) override {
    return RedisMultiGet(redis_.port(), keys);
  }

  std::vector<Fault> Faults(const Options& options) override {
    const int hold_s = static_cast<int>(std::max(1.0, options.hold_s));
    return {
        {"redis-kill", "Redis SIGKILL, restarted empty after the hold",
         [this] { redis_.Signal(SIGKILL); }, [this] { redis_.Start(); }},
        {"redis-stop",
         "Redis SIGSTOP (longer than the server's 500 ms Redis timeout), then SIGCONT",
         [this] { redis_.Signal(SIGSTOP); }, [this] { redis_.Signal(SIGCONT); }},
        {"mariadb-kill", "MariaDB SIGKILL, restarted (crash recovery) after the hold",
         [this] { mysql_.Signal(SIGKILL); }, [this] { mysql_.Start(); }},
        {"server-kill", "polycrud-server SIGKILL, restarted on the same ports after the hold",
         [this] { server_->Kill(); }, [this] { StartServer(); }},
        {"mysql-slow",
         "a session write-locks the users table for the hold: every query waits, the pool runs "
         "dry",
         [this, hold_s] {
           setenv("MYSQL_PWD", Setting("POLYCRUD_TEST_MYSQL_PASSWORD").c_str(), 1);
           Shell("mariadb -h127.0.0.1 -P" + std::to_string(mysql_.port()) + " -u" +
                 Setting("POLYCRUD_TEST_MYSQL_USER") + " " +
                 Setting("POLYCRUD_TEST_MYSQL_DATABASE") +
                 " -e 'LOCK TABLES users WRITE; SELECT SLEEP(" + std::to_string(hold_s) +
                 "); UNLOCK TABLES' >/dev/null 2>&1 &");
         },
         [] {}},
    };
  }

 private:
  void StartServer() {
    server_.reset();
    server_ =
        std::make_unique<ServerProcess>(ServerSettings{.protocols = kProtocols,
                                                       .ports = ports_,
                                                       .mysql_port = mysql_.port(),
                                                       .redis_port = redis_.port(),
                                                       .extra_args = {"--log-level", "warn"}});
    ports_ = server_->ports();
  }

  MariadbInstance mysql_{"faults-mariadb"};
  RedisInstance redis_{"faults-redis"};
  std::vector<std::pair<std::string, int>> ports_;
  std::unique_ptr<ServerProcess> server_;
};

// The multi-host layout of deploy/cluster/cluster.sh, driven from its client
// host: the load through its balancer, the checker reading MariaDB through
// the balancer (causal reads) and the Redis Cluster (redis-cli -c follows
// MOVED), the faults its drills. cluster.sh finds the layout through the
// POLYCRUD_CLUSTER_* environment it was made with.
class ClusterTarget final : public Target {
 public:
  explicit ClusterTarget(std::string dir) : dir_(std::move(dir)) {
    std::ifstream in(dir_ + "/endpoints.env");
    if (!in) throw std::runtime_error("no endpoints.env in " + dir_ + ": is the layout up?");
    std::string line;
    while (std::getline(in, line)) {
      const std::size_t eq = line.find('=');
      if (eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
    }
    // Every client, query and drill from here on runs in the client host.
    const std::string netns = Env("CLIENT_NETNS");
    const int fd = open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      throw std::runtime_error("cannot enter network namespace " + netns);
    }
    close(fd);
    setenv("POLYCRUD_CLUSTER_DIR", dir_.c_str(), 1);
    std::ifstream password(dir_ + "/redis-admin-password");
    std::getline(password, redis_admin_password_);
  }

  clients::ClientOptions Endpoint(const std::string& protocol) const override {
    std::string upper = protocol;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return {.host = Env(upper + "_HOST"), .port = std::stoi(Env(upper + "_PORT"))};
  }

  std::string Sql(const std::string& sql) override {
    setenv("MYSQL_PWD", Env("MYSQL_PASSWORD").c_str(), 1);
    // Causal: a node just promoted to writer answers only once it applied
    // everything committed before.
    return ShellOutput("mariadb --no-defaults --protocol=tcp -N -B -h " + Env("MYSQL_HOST") +
                           " -P " + Env("MYSQL_PORT") + " -u " + Env("MYSQL_USER") + " " +
                           Env("MYSQL_DATABASE"),
                       "SET SESSION wsrep_sync_wait = 1;\n" + sql + ";\n");
  }

  std::vector<std::optional<std::string>> CacheGet(const std::vector<std::string>& keys) override {
    // One redis-cli for all keys, in cluster mode; --raw prints a missing
    // key as an empty line (no cached value is empty). A value holding a
    // line break would shift the rest: the workload's names have none.
    std::string commands;
    for (const std::string& key : keys) commands += "GET " + key + "\n";
    setenv("REDISCLI_AUTH", redis_admin_password_.c_str(), 1);
    std::vector<std::optional<std::string>> values;
    for (const std::string& seed : Seeds()) {
      try {
        std::istringstream out(ShellOutput("redis-cli --no-auth-warning --user admin -c --raw -h " +
                                               seed.substr(0, seed.find(':')) + " -p " +
                                               seed.substr(seed.find(':') + 1),
                                           commands));
        std::string line;
        values.clear();
        while (values.size() < keys.size() && std::getline(out, line)) {
          // redis-cli tells each redirect it followed on a line of its own.
          if (line.starts_with("-> Redirected to slot")) continue;
          if (line.empty()) {
            values.emplace_back(std::nullopt);
          } else {
            values.emplace_back(std::move(line));
          }
        }
        if (values.size() == keys.size()) return values;
      } catch (const std::exception&) {
        // That node is down (a drill): ask the next one.
      }
    }
    throw std::runtime_error("no Redis Cluster node answered the cache check");
  }

  // With the near cache on, a server may answer from an entry filled before
  // a write through the other server whose event has not arrived yet: the
  // entry lives at most the near cache's lifetime from its fill, and the
  // fill may have read Redis up to a call's length before. Without events
  // reaching a server (its relay's host killed, the broker cut off) that
  // lifetime is the only bound, so it is the allowance.
  double StaleAllowanceMs() const override {
    if (std::stol(Env("NEAR_CACHE_ENTRIES")) == 0) return 0;
    return std::stod(Env("NEAR_CACHE_TTL_MS")) + kFillMarginMs;
  }

  std::vector<Fault> Faults(const Options&) override {
    return {
        // The partition comes before cache-kill: after that drill cache1
        // holds replicas only, which no server talks to.
        {"app-kill", "app1 (a polycrud-server host) SIGKILLed, restarted after the hold",
         [this] { Drill("kill app1"); }, [this] { Drill("restart app1"); }, true},
        {"app-cache-partition",
         "app2 and cache1 (a Redis master's host) cut off from each other, healed after the hold",
         [this] { Drill("partition app2 cache1"); }, [this] { Drill("heal"); }, true},
        {"db-writer-kill", "the Galera writer's host SIGKILLed, restarted after the hold",
         [this] {
           writer_ = Trim(Sql("SELECT @@wsrep_node_name"));
           std::cerr << "  the writer is " << writer_ << "\n";
           Drill("kill " + writer_);
         },
         [this] { Drill("restart " + writer_); }, true},
        {"cache-kill",
         "cache1 (a Redis master and a replica of another) SIGKILLed, restarted after the hold",
         [this] { Drill("kill cache1"); }, [this] { Drill("restart cache1"); }, true},
    };
  }

 private:
  std::string Env(const std::string& key) const {
    auto it = env_.find(key);
    if (it == env_.end()) throw std::runtime_error("endpoints.env lacks " + key);
    return it->second;
  }
  std::vector<std::string> Seeds() const {
    std::vector<std::string> seeds;
    std::istringstream list(Env("REDIS_NODES"));
    for (std::string node; std::getline(list, node, ',');) seeds.push_back(node);
    return seeds;
  }
  static std::string Trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }
  void Drill(const std::string& args) {
    if (Shell(std::string(POLYCRUD_CLUSTER_SCRIPT) + " " + args + " >&2") != 0) {
      throw std::runtime_error("cluster.sh " + args + " failed");
    }
  }

  static constexpr double kFillMarginMs = 250;

  std::string dir_;
  std::map<std::string, std::string> env_;
  std::string redis_admin_password_;
  std::string writer_;
};

// ---------------------------------------------------------------- report ----

struct FaultReport {
  std::string name;
  std::string what;
  int round = 0;
  std::size_t calls = 0;
  std::map<std::string, std::size_t> errors;  // code name, or "transport"
  double longest_call_ms = 0;
  double failing_s = 0;       // from the first failed call to the end of the last
  double full_service_s = 0;  // after the heal, until the last failed call
  double converged_s = 0;     // once quiet, until the cache equals MariaDB
  Verdict verdict;
};

std::string ErrorKey(const Call& c) {
  return c.transport_failure ? std::string("no answer") : std::string(StatusCodeName(c.code));
}

// Errors a healthy server gives this workload (a conditional update that lost
// the race, a user deleted meanwhile): not a sign of the fault.
bool ExpectedAnswer(const Call& c) {
  return c.acked() || c.code == StatusCode::kConflict || c.code == StatusCode::kNotFound;
}

FaultReport RunFault(const Options& options, Target& target, HotSet& hot, Knowledge& known,
                     const Fault& fault, int round) {
  FaultReport report{.name = fault.name, .what = fault.what, .round = round};
  Workload workload(options, hot,
                    [&target](const std::string& protocol) { return target.Endpoint(protocol); });
  const auto sleep_s = [](double s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(s * 1000)));
  };
  workload.Start();
  sleep_s(options.before_s);
  std::cerr << "  " << fault.name << ": injecting at " << workload.Now() << " s\n";
  fault.inject();
  sleep_s(options.hold_s);
  fault.heal();
  const double healed_at = workload.Now();
  std::cerr << "  " << fault.name << ": healed at " << healed_at << " s\n";
  sleep_s(options.after_s);
  const double stopped_at = workload.Now();
  const std::vector<std::vector<Call>> record = workload.Stop();

  std::vector<std::int64_t> ids = hot.All();
  std::set<std::string> answered_after;  // protocols with a good answer after the heal
  double last_failure_end = healed_at;
  double first_failure_start = -1;
  for (const auto& calls : record) {
    for (const Call& c : calls) {
      ++report.calls;
      report.longest_call_ms = std::max(report.longest_call_ms, (c.end_s - c.start_s) * 1000);
      if (!ExpectedAnswer(c)) {
        ++report.errors[ErrorKey(c)];
        last_failure_end = std::max(last_failure_end, c.end_s);
        if (first_failure_start < 0 || c.start_s < first_failure_start) {
          first_failure_start = c.start_s;
        }
      } else if (c.start_s > healed_at) {
        answered_after.insert(workload.protocol_of(c.client));
      }
    }
  }
  report.full_service_s = last_failure_end - healed_at;
  if (fault.must_fail_calls && report.errors.empty()) {
    report.verdict.Fail("no call failed: the fault never reached the load");
  }
  if (first_failure_start >= 0) report.failing_s = last_failure_end - first_failure_start;
  for (const std::string& protocol : kProtocols) {
    if (!answered_after.contains(protocol)) {
      report.verdict.Fail(protocol + " never answered after the fault was healed");
    }
  }
  if (last_failure_end > stopped_at - 1.0) {
    report.verdict.Fail("calls still failed in the last second of the run (at " +
                        std::to_string(last_failure_end) + " s, stopped at " +
                        std::to_string(stopped_at) + " s)");
  }
  const SqlRunner sql = [&target](const std::string& query) { return target.Sql(query); };
  const CacheReader cache = [&target](const std::vector<std::string>& keys) {
    return target.CacheGet(keys);
  };
  report.converged_s = WaitForCacheConvergence(sql, cache, ids, 15, report.verdict);
  CheckHistory(record, ReadRows(sql, ids), known, options.stale_allowance_ms, report.verdict);
  return report;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) continue;
    out += ch;
  }
  return out + "\"";
}

void PrintReports(const std::vector<FaultReport>& reports, std::ostream& out) {
  out << "\n| fault | round | calls | errors by code | longest call | calls failing for | "
         "full service after heal | cache converged | stale reads (longest) | checks |\n"
         "|---|---|---|---|---|---|---|---|---|---|\n";
  char buf[64];
  for (const FaultReport& r : reports) {
    std::string errors;
    for (const auto& [code, n] : r.errors) {
      errors += (errors.empty() ? "" : ", ") + code + " " + std::to_string(n);
    }
    out << "| " << r.name << " | " << r.round << " | " << r.calls << " | "
        << (errors.empty() ? "none" : errors) << " | ";
    std::snprintf(buf, sizeof buf, "%.0f ms | %.2f s | %.2f s | %.2f s | ", r.longest_call_ms,
                  r.failing_s, r.full_service_s, r.converged_s);
    out << buf << r.verdict.stale_reads;
    std::snprintf(buf, sizeof buf, " (%.0f ms) | ", r.verdict.max_stale_ms);
    out << buf << (r.verdict.violations.empty() ? "pass" : "FAIL") << " |\n";
  }
  for (const FaultReport& r : reports) {
    for (const std::string& v : r.verdict.violations) {
      out << "FAIL " << r.name << " round " << r.round << ": " << v << "\n";
    }
  }
}

void WriteJson(const std::vector<FaultReport>& reports, const std::string& path) {
  std::ofstream out(path);
  out << "{\"faults\": [";
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const FaultReport& r = reports[i];
    out << (i ? ", " : "") << "{\"name\": " << JsonString(r.name)
        << ", \"what\": " << JsonString(r.what) << ", \"round\": " << r.round
        << ", \"calls\": " << r.calls << ", \"errors\": {";
    bool first = true;
    for (const auto& [code, n] : r.errors) {
      out << (first ? "" : ", ") << JsonString(code) << ": " << n;
      first = false;
    }
    out << "}, \"longest_call_ms\": " << r.longest_call_ms << ", \"failing_s\": " << r.failing_s
        << ", \"full_service_s\": " << r.full_service_s << ", \"converged_s\": " << r.converged_s
        << ", \"stale_reads\": " << r.verdict.stale_reads
        << ", \"max_stale_ms\": " << r.verdict.max_stale_ms << ", \"violations\": [";
    for (std::size_t v = 0; v < r.verdict.violations.size(); ++v) {
      out << (v ? ", " : "") << JsonString(r.verdict.violations[v]);
    }
    out << "]}";
  }
  out << "]}\n";
}

int Main(int argc, char** argv) {
  // Refused connections while a fault lasts are expected: Thrift need not
  // print each one.
  apache::thrift::GlobalOutput.setOutputFunction([](const char*) {});
  Options options;
  CLI::App app{
      "polycrud fault suite: clients on all four protocols run creates, reads, conditional "
      "updates and deletes on a hot set of users while faults are injected into a private "
      "MariaDB, Redis and polycrud-server; then checks that no acknowledged write was lost, no "
      "read returned a version never written or older than its client saw, and the cache "
      "converged. Settings (server binary, scratch directory) come from the test settings."};
  app.add_option("--fault", options.faults,
                 "Faults to inject, in order (default: all of the target's). A private stack: "
                 "redis-kill, redis-stop, mariadb-kill, server-kill, mysql-slow; --cluster: "
                 "app-kill, app-cache-partition, db-writer-kill, cache-kill")
      ->check(
          CLI::IsMember({"redis-kill", "redis-stop", "mariadb-kill", "server-kill", "mysql-slow",
                         "app-kill", "cache-kill", "db-writer-kill", "app-cache-partition"}));
  app.add_option("--cluster", options.cluster_dir,
                 "Run against the multi-host layout whose state folder this is (cluster.sh's "
                 "POLYCRUD_CLUSTER_DIR), from its client host, with its drills as the faults");
  app.add_option("--before-s", options.before_s, "Seconds of load before each fault")
      ->check(CLI::Range(0.5, 3600.0))
      ->capture_default_str();
  app.add_option("--hold-s", options.hold_s, "Seconds each fault lasts")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  app.add_option("--after-s", options.after_s, "Seconds of load after each fault is healed")
      ->check(CLI::Range(2.0, 3600.0))
      ->capture_default_str();
  app.add_option("--rounds", options.rounds, "Times the list of faults is run")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--clients-per-protocol", options.clients_per_protocol)
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  app.add_option("--hot-users", options.hot_users, "Users the clients pick from")
      ->check(CLI::Range(2, 10000))
      ->capture_default_str();
  app.add_option("--timeout-ms", options.timeout_ms, "Client timeout per call")
      ->check(CLI::Range(100, 60000))
      ->capture_default_str();
  app.add_option("--stale-allowance-ms", options.stale_allowance_ms,
                 "A read of a version older than one its client saw fails unless it began "
                 "within this many ms of the client first seeing the newer one (then it is "
                 "counted as stale). Default: with --cluster, the layout's near-cache lifetime "
                 "plus 250 ms when its near cache is on, else 0")
      ->check(CLI::Range(0.0, 60000.0));
  app.add_option("--report", options.report_path, "Also write the results as JSON here");
  CLI11_PARSE(app, argc, argv);

  std::unique_ptr<Target> target;
  if (options.cluster_dir.empty()) {
    target = std::make_unique<LocalTarget>();
  } else {
    target = std::make_unique<ClusterTarget>(options.cluster_dir);
    std::ifstream token(options.cluster_dir + "/admin-token");
    std::getline(token, options.admin_token);
  }
  if (options.stale_allowance_ms < 0) options.stale_allowance_ms = target->StaleAllowanceMs();
  std::cerr << "staleness allowance: " << options.stale_allowance_ms << " ms\n";
  const std::vector<Fault> faults = target->Faults(options);
  if (options.faults.empty()) {
    for (const Fault& fault : faults) options.faults.push_back(fault.name);
  }
  for (const std::string& name : options.faults) {
    if (std::none_of(faults.begin(), faults.end(),
                     [&](const Fault& f) { return f.name == name; })) {
      std::cerr << "fault " << name << " does not exist for this target (--help)\n";
      return 2;
    }
  }
  HotSet hot(static_cast<std::size_t>(options.hot_users));
  Knowledge known;
  {
    std::unique_ptr<ProtocolClient> c = MakeProtocolClient("thrift", target->Endpoint("thrift"));
    const long tag = static_cast<long>(std::random_device{}() % 1'000'000);
    for (int i = 0; i < options.hot_users; ++i) {
      const std::string name = "faultseed" + std::to_string(tag) + "n" + std::to_string(i);
      auto o = c->CreateUser(
          options.admin_token,
          {.username = name, .email = name + "@example.com", .full_name = "seed " + name});
      if (!o.ok()) {
        std::cerr << "cannot create the hot set: " << o.status.message << "\n";
        return 1;
      }
      hot.Add(o.value->id);
      known.names_sent[o.value->id].insert(o.value->full_name);
    }
  }
  std::vector<FaultReport> reports;
  for (int round = 1; round <= options.rounds; ++round) {
    for (const std::string& name : options.faults) {
      for (const Fault& fault : faults) {
        if (fault.name != name) continue;
        std::cerr << "round " << round << ": " << fault.name << " (" << fault.what << ")\n";
        reports.push_back(RunFault(options, *target, hot, known, fault, round));
      }
    }
  }
  PrintReports(reports, std::cout);
  if (!options.report_path.empty()) WriteJson(reports, options.report_path);
  for (const FaultReport& r : reports) {
    if (!r.verdict.violations.empty()) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace polycrud::testing

int main(int argc, char** argv) {
  try {
    return polycrud::testing::Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "fault suite: " << e.what() << "\n";
    return 1;
  }
}
