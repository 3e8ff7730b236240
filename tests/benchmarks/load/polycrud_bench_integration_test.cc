// polycrud-bench end to end: about a second of load per protocol (thrift,
// thrift-compact, grpc, soap, rest), closed and open loop, against a server
// of its own on the test stack. It checks the result document's structure
// and that the counts are real (requests, bytes, cache and CPU counters),
// that keep-alive holds (as many sockets at the end as connections), that
// error answers are counted by code and the client reconnects after the
// server closed the connection, and the exit statuses. Not a speed test: no
// throughput or latency is asserted.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "clients/protocol_client.h"
#include "tests/support/server_process.h"
#include "tests/support/tool_run.h"

namespace polycrud::testing {
namespace {

using nlohmann::json;

struct BenchRun {
  int exit_status = -1;
  std::string output;  // stdout and stderr
  json result;         // the --json document, when written
};

// Runs polycrud-bench with `args` (plus --json to a scratch file).
BenchRun RunBench(const std::vector<std::string>& args) {
  const ToolRun tool = RunTool("'" + Setting("POLYCRUD_BENCH_BINARY") + "'", args, "--json");
  BenchRun run{.exit_status = tool.exit_status, .output = tool.output};
  if (!tool.document.empty()) {
    run.result = json::parse(tool.document, nullptr, /*allow_exceptions=*/false);
  }
  return run;
}

void ExpectLatencyObject(const json& latency) {
  for (const char* key : {"p50", "p90", "p99", "p999", "max", "mean"}) {
    ASSERT_TRUE(latency.contains(key)) << key;
    EXPECT_TRUE(latency[key].is_number()) << key;
    EXPECT_GT(latency[key].get<double>(), 0) << key;
  }
  EXPECT_LE(latency["p50"].get<double>(), latency["p90"].get<double>());
  EXPECT_LE(latency["p90"].get<double>(), latency["p99"].get<double>());
  EXPECT_LE(latency["p99"].get<double>(), latency["p999"].get<double>());
  EXPECT_LE(latency["p999"].get<double>(), latency["max"].get<double>());
}

// The structure every result document has, and the counts of a clean run
// of `connections` connections over existing ids with a get/ping mix, on
// `threads` threads (0: as many as connections) doing `io`.
void ExpectCleanResult(const json& r, const std::string& protocol, const std::string& mode,
                       int connections, int threads = 0, const std::string& io = "fibers") {
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["protocol"], protocol);
  EXPECT_EQ(r["mode"], mode);
  EXPECT_EQ(r["connections"], connections);
  EXPECT_EQ(r["threads"], threads != 0 ? threads : connections);
  EXPECT_EQ(r["io"], io);
  EXPECT_EQ(r["mix"], json({{"ping", 2}, {"get", 8}}));
  EXPECT_EQ(r["keys"]["dist"], "zipf");
  EXPECT_EQ(r["keys"]["s"], 0.99);
  EXPECT_GT(r["duration_s"].get<double>(), 0.9);
  const std::int64_t requests = r["requests"].get<std::int64_t>();
  EXPECT_GT(requests, 0);
  EXPECT_GT(r["throughput_rps"].get<double>(), 0);
  ExpectLatencyObject(r["latency_ms"]);
  ASSERT_TRUE(r["ops"].contains("get"));
  ASSERT_TRUE(r["ops"].contains("ping"));
  EXPECT_EQ(r["ops"]["get"]["requests"].get<std::int64_t>() +
                r["ops"]["ping"]["requests"].get<std::int64_t>(),
            requests);
  ExpectLatencyObject(r["ops"]["get"]["latency_ms"]);
  EXPECT_EQ(r["ops"]["get"]["errors"], 0);
  EXPECT_EQ(r["errors"], json::object());
  EXPECT_EQ(r["error_count"], 0);
  EXPECT_GT(r["bytes_sent_per_request"].get<double>(), 0);
  EXPECT_GT(r["bytes_received_per_request"].get<double>(), 0);
  ASSERT_TRUE(r["cache"].is_object());
  EXPECT_EQ(r["cache"]["source"], "metrics");
  EXPECT_GT(r["cache"]["hits"].get<std::int64_t>(), 0);  // the ids are hot after warm-up
  ASSERT_TRUE(r["server_cpu"].is_object());
  EXPECT_GE(r["server_cpu"]["seconds"].get<double>(), 0);
  EXPECT_GT(r["client_cpu"]["seconds"].get<double>(), 0);
  // Keep-alive: the connections opened at start are the ones still open.
  EXPECT_EQ(r["sockets"]["start"], connections);
  EXPECT_EQ(r["sockets"]["end"], connections);
  EXPECT_EQ(r["sockets"]["kept"], connections);
  std::int64_t histogram_total = 0;
  for (const json& bucket : r["histogram_us"]) histogram_total += bucket[1].get<std::int64_t>();
  EXPECT_EQ(histogram_total, requests);
  if (mode == "closed") {
    EXPECT_TRUE(r["sustained"].is_null());
    EXPECT_EQ(r["target_rate"], 0.0);
  } else {
    EXPECT_TRUE(r["sustained"].is_boolean());
    EXPECT_EQ(r["target_rate"], 200.0);
    EXPECT_EQ(r["open_loop"]["window_arrivals"], 200);  // exactly rate x 1 s
  }
}

class PolycrudBenchTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    // The tests check that the load keeps its connections open. A fast SOAP
    // run can pass the server's 10,000 requests per connection, after which
    // the server closes it; here nothing closes a connection.
    server_ = new ServerProcess({.protocols = {"thrift", "grpc", "soap", "rest"},
                                 .extra_args = {"--soap-max-keep-alive-requests", "0"}});
    compact_server_ = new ServerProcess(
        {.protocols = {"thrift", "rest"}, .extra_args = {"--thrift-protocol", "compact"}});
    // Ten users whose ids the load reads.
    auto client = clients::MakeProtocolClient("thrift", server_->port("thrift"));
    for (int i = 0; i < 10; ++i) {
      const std::string name = UniqueName("benchit");
      auto out = client->CreateUser(
          kAdminToken, {.username = name, .email = name + "@example.com", .full_name = "B"});
      ASSERT_TRUE(out.ok()) << out.status.message;
      if (i == 0) min_id_ = out.value->id;
      max_id_ = out.value->id;
    }
    ASSERT_EQ(max_id_ - min_id_, 9);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete compact_server_;
  }

  // The server and face port of the parameter's protocol.
  ServerProcess& server() const {
    return GetParam() == "thrift-compact" ? *compact_server_ : *server_;
  }
  int port() const { return server().port(GetParam() == "thrift-compact" ? "thrift" : GetParam()); }

  // Arguments of a run over ids [min_id, max_id] (default: the users made above).
  std::vector<std::string> CommonArgs(std::int64_t min_id = 0, std::int64_t max_id = 0,
                                      const std::string& duration_s = "1") const {
    const std::string metrics =
        "http://127.0.0.1:" + std::to_string(server().port("rest")) + "/metrics";
    return {"--protocol",    GetParam(),
            "--port",        std::to_string(port()),
            "--token",       kAdminToken,
            "--mix",         "get=8,ping=2",
            "--keys",        "zipf",
            "--min-id",      std::to_string(min_id != 0 ? min_id : min_id_),
            "--max-id",      std::to_string(max_id != 0 ? max_id : max_id_),
            "--connections", "2",
            "--warmup-s",    "0.3",
            "--duration-s",  duration_s,
            "--metrics-url", metrics,
            "--server-pid",  std::to_string(server().pid()),
            "--label",       "it-" + GetParam()};
  }

  static ServerProcess* server_;
  static ServerProcess* compact_server_;
  static std::int64_t min_id_;
  static std::int64_t max_id_;
};

ServerProcess* PolycrudBenchTest::server_ = nullptr;
ServerProcess* PolycrudBenchTest::compact_server_ = nullptr;
std::int64_t PolycrudBenchTest::min_id_ = 0;
std::int64_t PolycrudBenchTest::max_id_ = 0;

TEST_P(PolycrudBenchTest, ClosedLoopProducesACompleteCleanResult) {
  const BenchRun run = RunBench(CommonArgs());
  ASSERT_EQ(run.exit_status, 0) << run.output;
  EXPECT_NE(run.output.find("req/s"), std::string::npos) << run.output;
  ExpectCleanResult(run.result, GetParam(), "closed", 2);
  EXPECT_EQ(run.result["label"], "it-" + GetParam());
  EXPECT_TRUE(run.result["open_loop"].is_null());
}

TEST_P(PolycrudBenchTest, ProgressJsonGivesALineEveryHalfSecondWithTheIntervalsFigures) {
  std::vector<std::string> args = CommonArgs(0, 0, "1.5");
  args.push_back("--progress-json");
  const BenchRun run = RunBench(args);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  ExpectCleanResult(run.result, GetParam(), "closed", 2);
  std::istringstream lines(run.output);
  std::string line;
  std::vector<json> ticks;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.front() == '{') ticks.push_back(json::parse(line));
  }
  // 0.3 s of warm-up and 1.5 s measured: a line every 0.5 s and one at each
  // phase's end.
  ASSERT_GE(ticks.size(), 4u) << run.output;
  double elapsed = -1;
  std::int64_t calls = -1;
  int measuring_with_latency = 0;
  for (const json& tick : ticks) {
    EXPECT_GE(tick["elapsed_s"].get<double>(), elapsed);
    EXPECT_GE(tick["calls"].get<std::int64_t>(), calls);
    elapsed = tick["elapsed_s"].get<double>();
    calls = tick["calls"].get<std::int64_t>();
    EXPECT_NEAR(tick["total_s"].get<double>(), 1.8, 1e-6);
    EXPECT_EQ(tick["failed_calls"], 0);
    EXPECT_GE(tick["requests_per_s"].get<double>(), 0);
    if (tick["phase"] == "measuring" && tick["p50_ms"].is_number()) {
      EXPECT_GT(tick["p50_ms"].get<double>(), 0);
      EXPECT_GE(tick["p99_ms"].get<double>(), tick["p50_ms"].get<double>());
      EXPECT_GT(tick["requests_per_s"].get<double>(), 0);
      ++measuring_with_latency;
    }
  }
  EXPECT_GE(measuring_with_latency, 2) << run.output;
  EXPECT_GE(ticks.back()["calls"].get<std::int64_t>(), run.result["requests"].get<std::int64_t>());
  // No bar is drawn beside the lines.
  EXPECT_EQ(run.output.find('\r'), std::string::npos);
}

TEST_P(PolycrudBenchTest, ManyConnectionsShareOneThreadOfFibers) {
  std::vector<std::string> args = CommonArgs();
  args.insert(args.end(), {"--connections", "6", "--threads", "1"});
  const BenchRun run = RunBench(args);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  ExpectCleanResult(run.result, GetParam(), "closed", 6, 1);
}

TEST_P(PolycrudBenchTest, ThreadsThatBlockInEachCallGiveTheSameCleanResult) {
  std::vector<std::string> args = CommonArgs();
  args.insert(args.end(), {"--io", "threads"});
  const BenchRun run = RunBench(args);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  ExpectCleanResult(run.result, GetParam(), "closed", 2, 2, "threads");
}

TEST_P(PolycrudBenchTest, OpenLoopSendsOnTheScheduleAndReportsIt) {
  std::vector<std::string> args = CommonArgs();
  args.insert(args.end(), {"--mode", "open", "--rate", "200"});
  const BenchRun run = RunBench(args);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  ExpectCleanResult(run.result, GetParam(), "open", 2);
  const json& open = run.result["open_loop"];
  EXPECT_EQ(open["arrivals"], "uniform");
  // Every arrival of the window was completed, in the window or after it.
  EXPECT_EQ(open["completed_in_window"].get<std::int64_t>() + open["drained"].get<std::int64_t>() +
                open["not_sent"].get<std::int64_t>(),
            200);
  EXPECT_EQ(run.result["requests"].get<std::int64_t>(), 200 - open["not_sent"].get<std::int64_t>());
}

// Many fibers per thread at a low rate: most of the time nothing is in
// flight, and a thread must still wake for the next send time (a wait for
// completions that never come would hang the run).
TEST_P(PolycrudBenchTest, OpenLoopWithMostConnectionsIdleKeepsItsSchedule) {
  std::vector<std::string> args = CommonArgs();
  args.insert(args.end(), {"--mode", "open", "--rate", "200", "--connections", "12"});
  const BenchRun run = RunBench(args);
  ASSERT_EQ(run.exit_status, 0) << run.output;
  ExpectCleanResult(run.result, GetParam(), "open", 12, 2);
  EXPECT_TRUE(run.result["sustained"].get<bool>()) << run.output;
  EXPECT_EQ(run.result["open_loop"]["not_sent"].get<std::int64_t>(), 0);
}

TEST_P(PolycrudBenchTest, ErrorAnswersAreCountedByCodeAndTheClientReconnects) {
  // Ids past the end: every get is NOT_FOUND (a fault after which gSOAP's
  // server closes the connection), yet no call fails below the protocol.
  const BenchRun run = RunBench(CommonArgs(max_id_ + 1'000'000, max_id_ + 1'000'100, "0.5"));
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const json& r = run.result;
  ASSERT_TRUE(r["errors"].contains("NOT_FOUND")) << r.dump();
  EXPECT_EQ(r["errors"].size(), 1u) << r["errors"].dump();
  EXPECT_EQ(r["errors"]["NOT_FOUND"], r["ops"]["get"]["requests"]);
  EXPECT_EQ(r["error_count"], r["errors"]["NOT_FOUND"]);
  EXPECT_EQ(r["ops"]["ping"]["errors"], 0);
  EXPECT_GT(r["ops"]["get"]["latency_ms"]["p50"].get<double>(), 0);  // still recorded
}

TEST_P(PolycrudBenchTest, TransportFailuresAreCountedAndTheClientsReconnect) {
  // The server is stopped (SIGSTOP) for 0.7 s in the middle of the window:
  // calls time out after 200 ms and count as TRANSPORT, the clients open new
  // connections, and once the server runs again they work.
  std::vector<std::string> args = CommonArgs(0, 0, "2.5");
  args.insert(args.end(), {"--timeout-ms", "200"});
  BenchRun run;
  std::thread bench([&] { run = RunBench(args); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  kill(server().pid(), SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  kill(server().pid(), SIGCONT);
  bench.join();
  ASSERT_EQ(run.exit_status, 0) << run.output;
  const json& r = run.result;
  ASSERT_TRUE(r["errors"].contains("TRANSPORT")) << r["errors"].dump();
  EXPECT_GE(r["errors"]["TRANSPORT"].get<std::int64_t>(), 2) << "each connection timed out";
  EXPECT_EQ(r["errors"].size(), 1u) << r["errors"].dump();
  EXPECT_GT(r["requests"].get<std::int64_t>(), r["error_count"].get<std::int64_t>());
  // Connections that timed out were replaced by working ones (gRPC keeps its
  // HTTP/2 connection across a deadline).
  EXPECT_EQ(r["sockets"]["end"], 2) << r["sockets"].dump();
  if (GetParam() != "grpc") {
    EXPECT_LT(r["sockets"]["kept"].get<int>(), 2);
  }
  EXPECT_TRUE(clients::MakeProtocolClient(GetParam(), port())->Ping().ok());
}

INSTANTIATE_TEST_SUITE_P(Protocols, PolycrudBenchTest,
                         ::testing::Values("thrift", "thrift-compact", "grpc", "soap", "rest"),
                         ProtocolParamName);

TEST(PolycrudBenchExitTest, UsageErrorsExitWithTwo) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--protocol", "thrift", "--port", "1", "--mix", "fetch=1", "--token", "t"},
           {"--protocol", "thrift", "--port", "1", "--mix", "get=1"},  // no token
           {"--protocol", "carrier-pigeon", "--port", "1"},
           {"--protocol", "thrift", "--port", "1", "--mode", "open"},  // no rate
           {"--protocol", "thrift", "--port", "1", "--connections", "2", "--threads", "3"},
           {"--protocol", "thrift", "--port", "1", "--no-such-flag"}}) {
    const BenchRun run = RunBench(args);
    std::string line;
    for (const std::string& arg : args) line += arg + " ";
    EXPECT_EQ(run.exit_status, 2) << line << ": " << run.output;
    EXPECT_TRUE(run.result.is_discarded() || run.result.is_null()) << "no result document";
  }
  EXPECT_EQ(RunBench({"--help"}).exit_status, 0);
}

TEST(PolycrudBenchExitTest, NoServerExitsWithOne) {
  const int port = FreePort();  // nothing listens there
  for (const char* protocol : {"thrift", "grpc", "soap", "rest"}) {
    const BenchRun run = RunBench({"--protocol", protocol, "--port", std::to_string(port), "--mix",
                                   "ping=1", "--duration-s", "0.2", "--timeout-ms", "2000"});
    EXPECT_EQ(run.exit_status, 1) << protocol << ": " << run.output;
    EXPECT_NE(run.output.find("polycrud-bench:"), std::string::npos) << run.output;
  }
}

}  // namespace
}  // namespace polycrud::testing
