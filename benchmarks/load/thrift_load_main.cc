// polycrud-thrift-load: a closed-loop Thrift load generator. Each connection
// is driven by its own thread issuing one call after another for the given
// duration; it reports throughput and latency percentiles. Used to compare
// the Thrift server models and protocols on the same machine and data.
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "UserService.h"

namespace {

namespace gen = ::polycrud::thrift;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 9090;
  std::string token;
  std::string op = "get";
  std::string protocol = "binary";
  int connections = 16;
  double duration_s = 10;
  double warmup_s = 2;
  std::int64_t min_id = 1;
  std::int64_t max_id = 1000;
};

std::unique_ptr<gen::UserServiceClient> Connect(
    const Options& o, std::shared_ptr<apache::thrift::transport::TTransport>& transport) {
  using namespace apache::thrift;
  auto socket = std::make_shared<transport::TSocket>(o.host, o.port);
  socket->setNoDelay(true);
  transport = std::make_shared<transport::TFramedTransport>(socket);
  std::shared_ptr<protocol::TProtocol> proto;
  if (o.protocol == "compact") {
    proto = std::make_shared<protocol::TCompactProtocol>(transport);
  } else {
    proto = std::make_shared<protocol::TBinaryProtocol>(transport);
  }
  transport->open();
  return std::make_unique<gen::UserServiceClient>(proto);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"polycrud-thrift-load: closed-loop Thrift load (one thread per connection)"};
  Options o;
  app.add_option("--host", o.host)->capture_default_str();
  app.add_option("--port", o.port)->capture_default_str();
  app.add_option("--token", o.token, "Bearer token")->envname("POLYCRUD_TOKEN");
  app.add_option("--op", o.op, "Operation")
      ->check(CLI::IsMember({"ping", "get"}))
      ->capture_default_str();
  app.add_option("--protocol", o.protocol)
      ->check(CLI::IsMember({"binary", "compact"}))
      ->capture_default_str();
  app.add_option("--connections", o.connections)->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--duration-s", o.duration_s)->capture_default_str();
  app.add_option("--warmup-s", o.warmup_s)->capture_default_str();
  app.add_option("--min-id", o.min_id, "get: smallest id drawn")->capture_default_str();
  app.add_option("--max-id", o.max_id, "get: ids drawn uniformly from min-id..max-id")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> errors{0};
  std::mutex mu;
  std::vector<std::uint32_t> latencies_us;
  std::vector<std::thread> threads;
  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back([&, c] {
      std::shared_ptr<apache::thrift::transport::TTransport> transport;
      std::unique_ptr<gen::UserServiceClient> client;
      try {
        client = Connect(o, transport);
      } catch (const std::exception& e) {
        std::cerr << "connection " << c << ": " << e.what() << '\n';
        errors.fetch_add(1);
        return;
      }
      std::mt19937_64 rng(static_cast<std::uint64_t>(c));
      std::uniform_int_distribution<std::int64_t> ids(o.min_id, o.max_id);
      std::vector<std::uint32_t> local;
      local.reserve(1 << 16);
      while (!stop.load(std::memory_order_relaxed)) {
        const auto start = Clock::now();
        try {
          if (o.op == "ping") {
            std::string out;
            client->ping(out);
          } else {
            gen::User out;
            client->getUser(out, o.token, ids(rng));
          }
        } catch (const apache::thrift::TException&) {
          errors.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        if (measuring.load(std::memory_order_relaxed)) {
          local.push_back(static_cast<std::uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()));
        }
      }
      std::lock_guard lock(mu);
      latencies_us.insert(latencies_us.end(), local.begin(), local.end());
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup_s));
  measuring = true;
  const auto begin = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.duration_s));
  measuring = false;
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  stop = true;
  for (auto& t : threads) t.join();

  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) -> double {
    if (latencies_us.empty()) return 0;
    const auto i = static_cast<std::size_t>(p * static_cast<double>(latencies_us.size() - 1));
    return latencies_us[i] / 1000.0;
  };
  std::cout << "op=" << o.op << " connections=" << o.connections << " protocol=" << o.protocol
            << " calls=" << latencies_us.size() << " throughput="
            << static_cast<std::uint64_t>(static_cast<double>(latencies_us.size()) / elapsed)
            << "/s p50=" << pct(0.50) << "ms p99=" << pct(0.99) << "ms p99.9=" << pct(0.999)
            << "ms max=" << pct(1.0) << "ms errors=" << errors.load() << '\n';
  return 0;
}
