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
//     of it was tried;
//   - once quiet, every cached entry equals MariaDB's row or reads as absent;
//   - full service after the fault: every protocol answers again, and no
//     call fails in the last second of the run.
// Per fault it reports the calls, the errors by code, the longest call, the
// seconds until full service and until the cache converged. Exit status 0
// when every check passed, 1 otherwise, 2 on bad usage.
#include <signal.h>
#include <thrift/Thrift.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
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
  std::vector<std::string> faults = {"redis-kill", "redis-stop", "mariadb-kill", "server-kill",
                                     "mysql-slow"};
  double before_s = 2;
  double hold_s = 3;
  double after_s = 5;
  int rounds = 1;
  int clients_per_protocol = 2;
  int hot_users = 40;
  int timeout_ms = 2000;
  std::string report_path;
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
  Workload(const Options& options, HotSet& hot, std::function<int(const std::string&)> port)
      : options_(options), hot_(hot), port_(std::move(port)) {}

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
          c = MakeProtocolClient(
              protocol,
              clients::ClientOptions{.port = port_(protocol), .timeout_ms = options_.timeout_ms});
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
        auto o = c->CreateUser(
            kAdminToken, {.username = user, .email = user + "@example.com", .full_name = name});
        status = o.status;
        if (o.ok()) {
          call.ids.push_back(o.value->id);
          call.seen.push_back({o.value->id, o.value->version, o.value->full_name});
          hot_.Add(o.value->id);
        }
      } else if (r < 50) {
        call.op = Op::kGet;
        call.ids.push_back(hot_.Pick(rng));
        auto o = c->GetUser(kAdminToken, call.ids[0]);
        status = o.status;
        if (o.ok()) call.seen.push_back({o.value->id, o.value->version, o.value->full_name});
      } else if (r < 60) {
        call.op = Op::kBatchGet;
        for (int i = 0; i < 3; ++i) call.ids.push_back(hot_.Pick(rng));
        auto o = c->BatchGetUsers(kAdminToken, call.ids);
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
        auto o = c->UpdateUser(kAdminToken, call.ids[0],
                               {.full_name = name, .expected_version = expected});
        status = o.status;
        if (o.ok()) call.seen.push_back({o.value->id, o.value->version, o.value->full_name});
      } else {
        call.op = Op::kDelete;
        call.ids.push_back(hot_.Pick(rng));
        status = c->DeleteUser(kAdminToken, call.ids[0]).status;
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
  std::function<int(const std::string&)> port_;
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

// The rows of `ids` in MariaDB.
std::map<std::int64_t, Row> ReadRows(int mysql_port, const std::vector<std::int64_t>& ids) {
  std::map<std::int64_t, Row> rows;
  for (std::size_t at = 0; at < ids.size(); at += 500) {
    std::string list;
    for (std::size_t i = at; i < std::min(ids.size(), at + 500); ++i) {
      list += (list.empty() ? "" : ",") + std::to_string(ids[i]);
    }
    std::istringstream out(MysqlQuery(
        mysql_port, "SELECT id, version, full_name FROM users WHERE id IN (" + list + ")"));
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

void CheckHistory(const std::vector<std::vector<Call>>& record,
                  const std::map<std::int64_t, Row>& rows, Knowledge& known, Verdict& verdict) {
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
            verdict.Fail(where + ": read version " + std::to_string(s.version) + " of user " +
                         std::to_string(s.id) + " after seeing version " +
                         std::to_string(newest[s.id]));
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
        for (const Seen& s : c.seen) newest[s.id] = std::max(newest[s.id], s.version);
      }
    }
  }
}

// Seconds (polling up to `limit_s`) until every cached entry of `ids` equals
// MariaDB's row or reads as absent; the ids that still differ go to verdict.
double WaitForCacheConvergence(int mysql_port, int redis_port, const std::vector<std::int64_t>& ids,
                               double limit_s, Verdict& verdict) {
  const auto start = Clock::now();
  std::vector<std::string> stale;
  while (true) {
    stale.clear();
    const std::map<std::int64_t, Row> rows = ReadRows(mysql_port, ids);
    std::vector<std::string> keys;
    keys.reserve(ids.size());
    for (const std::int64_t id : ids) keys.push_back("user:" + std::to_string(id));
    const std::vector<std::optional<std::string>> values = RedisMultiGet(redis_port, keys);
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

struct Stack {
  MariadbInstance mysql{"faults-mariadb"};
  RedisInstance redis{"faults-redis"};
  std::unique_ptr<ServerProcess> server;

  ServerSettings Settings(std::vector<std::pair<std::string, int>> ports = {}) const {
    return {.protocols = kProtocols,
            .ports = std::move(ports),
            .mysql_port = mysql.port(),
            .redis_port = redis.port(),
            .extra_args = {"--log-level", "warn"}};
  }
  void StartServer() {
    std::vector<std::pair<std::string, int>> ports;
    if (server) ports = server->ports();
    server.reset();
    server = std::make_unique<ServerProcess>(Settings(ports));
  }
};

struct Fault {
  std::string name;
  std::string what;
  std::function<void(Stack&)> inject;
  std::function<void(Stack&)> heal;
};

std::vector<Fault> AllFaults(const Options& options) {
  const int hold_s = static_cast<int>(std::max(1.0, options.hold_s));
  return {
      {"redis-kill", "Redis SIGKILL, restarted empty after the hold",
       [](Stack& s) { s.redis.Signal(SIGKILL); }, [](Stack& s) { s.redis.Start(); }},
      {"redis-stop", "Redis SIGSTOP (longer than the server's 500 ms Redis timeout), then SIGCONT",
       [](Stack& s) { s.redis.Signal(SIGSTOP); }, [](Stack& s) { s.redis.Signal(SIGCONT); }},
      {"mariadb-kill", "MariaDB SIGKILL, restarted (crash recovery) after the hold",
       [](Stack& s) { s.mysql.Signal(SIGKILL); }, [](Stack& s) { s.mysql.Start(); }},
      {"server-kill", "polycrud-server SIGKILL, restarted on the same ports after the hold",
       [](Stack& s) { s.server->Kill(); }, [](Stack& s) { s.StartServer(); }},
      {"mysql-slow",
       "a session write-locks the users table for the hold: every query waits, the pool runs dry",
       [hold_s](Stack& s) {
         setenv("MYSQL_PWD", Setting("POLYCRUD_TEST_MYSQL_PASSWORD").c_str(), 1);
         Shell("mariadb -h127.0.0.1 -P" + std::to_string(s.mysql.port()) + " -u" +
               Setting("POLYCRUD_TEST_MYSQL_USER") + " " + Setting("POLYCRUD_TEST_MYSQL_DATABASE") +
               " -e 'LOCK TABLES users WRITE; SELECT SLEEP(" + std::to_string(hold_s) +
               "); UNLOCK TABLES' >/dev/null 2>&1 &");
       },
       [](Stack&) {}},
  };
}

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

FaultReport RunFault(const Options& options, Stack& stack, HotSet& hot, Knowledge& known,
                     const Fault& fault, int round) {
  FaultReport report{.name = fault.name, .what = fault.what, .round = round};
  // The ports stay the same across a server restart; the clients never look
  // at the (replaced) server object.
  std::map<std::string, int> ports;
  for (const auto& [protocol, port] : stack.server->ports()) ports[protocol] = port;
  Workload workload(options, hot,
                    [ports](const std::string& protocol) { return ports.at(protocol); });
  const auto sleep_s = [](double s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(s * 1000)));
  };
  workload.Start();
  sleep_s(options.before_s);
  std::cerr << "  " << fault.name << ": injecting at " << workload.Now() << " s\n";
  fault.inject(stack);
  sleep_s(options.hold_s);
  fault.heal(stack);
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
  report.converged_s =
      WaitForCacheConvergence(stack.mysql.port(), stack.redis.port(), ids, 15, report.verdict);
  CheckHistory(record, ReadRows(stack.mysql.port(), ids), known, report.verdict);
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
         "full service after heal | cache converged | checks |\n"
         "|---|---|---|---|---|---|---|---|---|\n";
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
        << ", \"violations\": [";
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
  app.add_option("--fault", options.faults, "Faults to inject, in order")
      ->check(
          CLI::IsMember({"redis-kill", "redis-stop", "mariadb-kill", "server-kill", "mysql-slow"}))
      ->capture_default_str();
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
  app.add_option("--report", options.report_path, "Also write the results as JSON here");
  CLI11_PARSE(app, argc, argv);

  Stack stack;
  stack.StartServer();
  HotSet hot(static_cast<std::size_t>(options.hot_users));
  Knowledge known;
  {
    std::unique_ptr<ProtocolClient> c = MakeProtocolClient("thrift", stack.server->port("thrift"));
    const long tag = static_cast<long>(std::random_device{}() % 1'000'000);
    for (int i = 0; i < options.hot_users; ++i) {
      const std::string name = "faultseed" + std::to_string(tag) + "n" + std::to_string(i);
      auto o = c->CreateUser(
          kAdminToken,
          {.username = name, .email = name + "@example.com", .full_name = "seed " + name});
      if (!o.ok()) {
        std::cerr << "cannot create the hot set: " << o.status.message << "\n";
        return 1;
      }
      hot.Add(o.value->id);
      known.names_sent[o.value->id].insert(o.value->full_name);
    }
  }
  const std::vector<Fault> faults = AllFaults(options);
  std::vector<FaultReport> reports;
  for (int round = 1; round <= options.rounds; ++round) {
    for (const std::string& name : options.faults) {
      for (const Fault& fault : faults) {
        if (fault.name != name) continue;
        std::cerr << "round " << round << ": " << fault.name << " (" << fault.what << ")\n";
        reports.push_back(RunFault(options, stack, hot, known, fault, round));
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
