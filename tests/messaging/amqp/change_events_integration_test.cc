// Change events end to end (docs/events.md) on a private MariaDB, Redis and
// RabbitMQ: the relay publishes every event once, in order per user; the
// broker stopped while writes go on loses nothing; a batch confirmed but
// not marked is delivered again with the same event ids; a relay frozen and
// killed is replaced, and two relays never publish at the same time; a
// server's near cache forgets what another server changed, serves nothing
// while the events do not arrive, and reads through it are stale for at
// most the propagation delay. The tests share the three instances and run
// in one process (see CMakeLists.txt).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/outbox_relay.h"
#include "core/ports.h"
#include "messaging/amqp/amqp_publisher.h"
#include "messaging/amqp/amqp_subscriber.h"
#include "storage/mysql/mysql_outbox.h"
#include "storage/mysql/mysql_user_store.h"
#include "tests/storage/mysql/mysql_test_options.h"
#include "tests/support/eventually.h"
#include "tests/support/server_process.h"
#include "tests/support/settings.h"
#include "tests/support/stack.h"

namespace polycrud {
namespace {

using namespace std::chrono_literals;
using testing::Eventually;
using testing::Setting;
namespace gen = ::polycrud::thrift;

// What a consumer got: one delivery.
struct Received {
  std::string routing_key;
  std::string message_id;
  std::string app_id;
  std::string event_id;  // from the body
  std::int64_t id = 0;
  std::int64_t version = 0;
};

// Consumes a durable queue of its own into memory.
class Collector {
 public:
  Collector(const AmqpOptions& amqp, const std::string& queue)
      : subscriber_(AmqpSubscriberOptions{.amqp = amqp, .queue = queue},
                    AmqpSubscriber::Handlers{.on_message = [this](const AmqpDelivery& d) {
                      const nlohmann::json body = nlohmann::json::parse(d.body);
                      const std::lock_guard lock(mu_);
                      received_.push_back({std::string(d.routing_key), std::string(d.message_id),
                                           std::string(d.app_id), body.value("event_id", ""),
                                           body.value("id", std::int64_t{0}),
                                           body.value("version", std::int64_t{0})});
                    }}) {
    subscriber_.Start();
    EXPECT_TRUE(Eventually([&] { return subscriber_.connected(); }, 20s));
  }
  std::vector<Received> received() const {
    const std::lock_guard lock(mu_);
    return received_;
  }
  std::size_t distinct() const {
    std::set<std::string> ids;
    for (const Received& r : received()) ids.insert(r.event_id);
    return ids.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<Received> received_;  // guarded by mu_
  AmqpSubscriber subscriber_;       // last: stopped before the rest goes
};

class ChangeEventsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    mariadb_ = new testing::MariadbInstance("mariadb-events");
    redis_ = new testing::RedisInstance("redis-events");
    broker_ = new testing::RabbitmqInstance("rabbitmq-events");
    MysqlUserStore store(Mysql());
    ASSERT_TRUE(store.Migrate().ok());
  }
  static void TearDownTestSuite() {
    delete broker_;
    delete redis_;
    delete mariadb_;
  }
  void SetUp() override {
    testing::MysqlQuery(mariadb_->port(), "DELETE FROM user_events; DELETE FROM event_relay_lease");
  }

  static MysqlOptions Mysql() {
    MysqlOptions options = testing::TestMysqlOptions(mariadb_->port());
    options.write_events = true;
    return options;
  }
  static AmqpOptions Amqp() {
    AmqpOptions options;
    options.host = "127.0.0.1";
    options.port = broker_->port();
    options.user = Setting("POLYCRUD_TEST_AMQP_USER");
    options.password = Setting("POLYCRUD_TEST_AMQP_PASSWORD");
    options.vhost = Setting("POLYCRUD_TEST_AMQP_VHOST");
    return options;
  }
  // A polycrud-server with change events on this test's instances.
  static testing::ServerSettings ServerWithEvents(
      std::vector<std::pair<std::string, std::string>> more_env = {}) {
    testing::ServerSettings settings;
    settings.mysql_port = mariadb_->port();
    settings.redis_port = redis_->port();
    const AmqpOptions amqp = Amqp();
    settings.extra_env = {
        {"POLYCRUD_AMQP_HOST", amqp.host},   {"POLYCRUD_AMQP_PORT", std::to_string(amqp.port)},
        {"POLYCRUD_AMQP_USER", amqp.user},   {"POLYCRUD_AMQP_PASSWORD", amqp.password},
        {"POLYCRUD_AMQP_VHOST", amqp.vhost}, {"POLYCRUD_EVENTS_LEASE_MS", "5000"}};
    for (auto& kv : more_env) settings.extra_env.push_back(std::move(kv));
    return settings;
  }
  // Every event of the outbox: event_id -> (user id, version).
  static std::map<std::string, std::pair<std::int64_t, std::int64_t>> OutboxEvents() {
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> events;
    const std::string rows = testing::MysqlQuery(
        mariadb_->port(), "SELECT event_id, user_id, version FROM user_events ORDER BY seq");
    std::size_t at = 0;
    while (at < rows.size()) {
      const std::size_t end = rows.find('\n', at);
      const std::string line = rows.substr(at, end - at);
      at = end == std::string::npos ? rows.size() : end + 1;
      const std::size_t t1 = line.find('\t');
      const std::size_t t2 = line.find('\t', t1 + 1);
      events[line.substr(0, t1)] = {std::stoll(line.substr(t1 + 1, t2 - t1 - 1)),
                                    std::stoll(line.substr(t2 + 1))};
    }
    return events;
  }
  // Each delivery matches its outbox row, every outbox event arrived, one
  // event id per (user, version), and per user the versions (the first
  // delivery of each event) only go up.
  static void ExpectEveryEventInOrder(const std::vector<Received>& received) {
    const auto outbox = OutboxEvents();
    std::set<std::string> seen;
    std::map<std::pair<std::int64_t, std::int64_t>, std::string> id_of;
    std::map<std::int64_t, std::int64_t> last_version;
    for (const Received& r : received) {
      EXPECT_EQ(r.message_id, r.event_id);
      auto row = outbox.find(r.event_id);
      ASSERT_NE(row, outbox.end()) << "an event that is not in the outbox: " << r.event_id;
      EXPECT_EQ(row->second, std::make_pair(r.id, r.version));
      auto [it, fresh] = id_of.emplace(std::make_pair(r.id, r.version), r.event_id);
      EXPECT_EQ(it->second, r.event_id)
          << "two event ids for user " << r.id << " version " << r.version;
      if (!seen.insert(r.event_id).second) continue;  // a redelivery
      EXPECT_GT(r.version, last_version[r.id]) << "user " << r.id << " out of order";
      last_version[r.id] = r.version;
    }
    EXPECT_EQ(seen.size(), outbox.size()) << "events lost";
  }

  static testing::MariadbInstance* mariadb_;
  static testing::RedisInstance* redis_;
  static testing::RabbitmqInstance* broker_;
};

testing::MariadbInstance* ChangeEventsTest::mariadb_ = nullptr;
testing::RedisInstance* ChangeEventsTest::redis_ = nullptr;
testing::RabbitmqInstance* ChangeEventsTest::broker_ = nullptr;

// `users` new users and `updates` updates of each, round robin.
std::vector<std::int64_t> Write(MysqlUserStore& store, const std::string& prefix, int users,
                                int updates) {
  std::vector<std::int64_t> ids;
  for (int u = 0; u < users; ++u) {
    const std::string name = testing::UniqueName(prefix + std::to_string(u) + "_");
    StatusOr<User> created = store.Insert(
        UserDraft{.username = name, .email = name + "@example.com", .full_name = "N"}, 1);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    if (created.ok()) ids.push_back(created->id);
  }
  for (int n = 0; n < updates; ++n) {
    for (const std::int64_t id : ids) {
      StatusOr<User> updated =
          store.Update(id, UserPatch{.full_name = "N" + std::to_string(n)}, 2 + n);
      EXPECT_TRUE(updated.ok()) << updated.status().ToString();
    }
  }
  return ids;
}

TEST_F(ChangeEventsTest, TheRelayPublishesEveryEventOnceInOrderPerUser) {
  Collector consumer(Amqp(), "test-order");
  MysqlUserStore store(Mysql());
  Write(store, "order", 3, 10);
  MysqlOutbox outbox(Mysql(), 10'000);
  AmqpPublisher publisher(Amqp());
  SystemClock clock;
  OutboxRelay relay(outbox, publisher, clock, OutboxRelayOptions{.batch = 7});
  relay.Start();
  EXPECT_TRUE(Eventually([&] { return consumer.received().size() >= 33; }, 20s));
  relay.Stop();
  const std::vector<Received> received = consumer.received();
  EXPECT_EQ(received.size(), 33u);  // no fault: no redelivery
  for (const Received& r : received) {
    EXPECT_EQ(r.routing_key, r.version == 1 ? "user.created" : "user.updated");
  }
  ExpectEveryEventInOrder(received);
  EXPECT_EQ(outbox.Pending()->events, 0);
}

TEST_F(ChangeEventsTest, WritesGoOnWhileTheBrokerIsDownAndEveryEventArrivesOnceItIsBack) {
  Collector consumer(Amqp(), "test-broker-down");
  MysqlUserStore store(Mysql());
  MysqlOutbox outbox(Mysql(), 10'000);
  AmqpPublisher publisher(Amqp());
  SystemClock clock;
  OutboxRelay relay(outbox, publisher, clock,
                    OutboxRelayOptions{.batch = 10, .backoff_max_ms = 1'000});
  relay.Start();
  Write(store, "before", 2, 2);
  ASSERT_TRUE(Eventually([&] { return consumer.distinct() == 6; }, 20s));

  broker_->Stop();
  const auto down_at = std::chrono::steady_clock::now();
  Write(store, "down", 5, 7);  // 40 writes, none waits for the broker
  EXPECT_LT(std::chrono::steady_clock::now() - down_at, 10s);
  EXPECT_EQ(outbox.Pending()->events, 40);
  broker_->Start();
  EXPECT_TRUE(Eventually([&] { return consumer.distinct() == 46; }, 60s));
  relay.Stop();
  EXPECT_GT(relay.failures(), 0u);
  ExpectEveryEventInOrder(consumer.received());
}

// The outbox, except that marking a batch sent fails once: what a relay
// that dies between the broker's confirms and its UPDATE leaves behind.
class MarkFailsOnce final : public EventOutbox {
 public:
  explicit MarkFailsOnce(EventOutbox& inner) : inner_(inner) {}
  StatusOr<bool> HoldLease() override { return inner_.HoldLease(); }
  Status ReleaseLease() override { return inner_.ReleaseLease(); }
  StatusOr<std::vector<OutboxEvent>> Unsent(std::int32_t limit) override {
    return inner_.Unsent(limit);
  }
  Status MarkSent(std::span<const std::int64_t> seqs, std::int64_t now_ms) override {
    if (!failed_) {
      failed_ = true;
      return Status::Unavailable("database unavailable");
    }
    return inner_.MarkSent(seqs, now_ms);
  }
  StatusOr<std::int64_t> Prune(std::int64_t before_ms, std::int32_t limit) override {
    return inner_.Prune(before_ms, limit);
  }

 private:
  EventOutbox& inner_;
  bool failed_ = false;
};

TEST_F(ChangeEventsTest, ABatchConfirmedButNotMarkedIsDeliveredAgainWithTheSameEventIds) {
  Collector consumer(Amqp(), "test-redeliver");
  MysqlUserStore store(Mysql());
  Write(store, "again", 4, 1);
  MysqlOutbox mysql_outbox(Mysql(), 10'000);
  MarkFailsOnce outbox(mysql_outbox);
  AmqpPublisher publisher(Amqp());
  SystemClock clock;
  OutboxRelay relay(outbox, publisher, clock, OutboxRelayOptions{.batch = 100});
  EXPECT_FALSE(relay.RunOnce().ok());  // published and confirmed, not marked
  StatusOr<std::size_t> again = relay.RunOnce();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, 8u);
  ASSERT_TRUE(Eventually([&] { return consumer.received().size() == 16; }, 20s));
  const std::vector<Received> received = consumer.received();
  for (std::size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(received[i].event_id, received[i + 8].event_id);  // the same batch, the same ids
  }
  ExpectEveryEventInOrder(received);
  EXPECT_EQ(mysql_outbox.Pending()->events, 0);
}

TEST_F(ChangeEventsTest, ARelayFrozenThenKilledIsReplacedAndTwoRelaysNeverPublishAtOnce) {
  MysqlUserStore store(Mysql());
  // A backlog for the relays to work through: 3,000 events.
  std::vector<std::thread> writers;
  for (int t = 0; t < 6; ++t) {
    writers.emplace_back([&store, t] { Write(store, "kill" + std::to_string(t) + "_", 100, 4); });
  }
  for (std::thread& writer : writers) writer.join();
  ASSERT_EQ(OutboxEvents().size(), 3'000u);

  Collector consumer(Amqp(), "test-kill");
  auto a = std::make_unique<testing::ServerProcess>(
      ServerWithEvents({{"POLYCRUD_EVENTS_BATCH", "1000"}}));
  auto b = std::make_unique<testing::ServerProcess>(
      ServerWithEvents({{"POLYCRUD_EVENTS_BATCH", "1000"}}));
  ASSERT_TRUE(Eventually([&] { return !consumer.received().empty(); }, 30s));
  // The relay publishing is named in its messages ("host:pid:random").
  const std::string active = consumer.received().front().app_id;
  const pid_t active_pid = static_cast<pid_t>(std::stol(active.substr(active.find(':') + 1)));
  ASSERT_TRUE(active_pid == a->pid() || active_pid == b->pid()) << active;
  std::unique_ptr<testing::ServerProcess>& killed = active_pid == a->pid() ? a : b;
  // Frozen wherever it is (usually inside a batch), then more writes only
  // the other relay can publish, then killed.
  ASSERT_EQ(kill(active_pid, SIGSTOP), 0);
  Write(store, "after", 20, 9);
  killed->Kill();
  EXPECT_TRUE(Eventually([&] { return consumer.distinct() == 3'200; }, 60s));

  const std::vector<Received> received = consumer.received();
  ExpectEveryEventInOrder(received);
  // Who published, in delivery order: the killed relay, then the other one,
  // never the two interleaved.
  std::vector<std::string> runs;
  for (const Received& r : received) {
    if (runs.empty() || runs.back() != r.app_id) runs.push_back(r.app_id);
  }
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0], active);
  // Part of the batch in flight arrives twice when the kill fell inside one
  // (its redelivery is the test above).
  ::testing::Test::RecordProperty("redelivered",
                                  static_cast<int>(received.size() - consumer.distinct()));
}

TEST_F(ChangeEventsTest, ANearCacheForgetsWhatAnotherServerChangedAndServesNothingWithoutEvents) {
  // Near-cache entries would live a minute: only an event makes one go.
  const std::vector<std::pair<std::string, std::string>> env = {
      {"POLYCRUD_NEAR_CACHE_TTL_MS", "60000"}};
  testing::ServerProcess writer(ServerWithEvents(env));
  testing::ServerProcess reader(ServerWithEvents(env));
  testing::ThriftClient via_writer(writer.thrift_port());
  testing::ThriftClient via_reader(reader.thrift_port());
  gen::User user;
  via_writer->createUser(user, testing::kAdminToken, testing::TestDraft(testing::UniqueName("nc")));
  gen::User got;
  ASSERT_TRUE(Eventually(
      [&] {
        via_reader->getUser(got, testing::kReaderToken, user.id);
        return got.version == 1;
      },
      20s));
  via_reader->getUser(got, testing::kReaderToken, user.id);  // now in its near cache

  gen::UserPatch patch;
  patch.__set_full_name("Second");
  gen::User updated;
  via_writer->updateUser(updated, testing::kAdminToken, user.id, patch);
  const auto written_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(Eventually(
      [&] {
        via_reader->getUser(got, testing::kReaderToken, user.id);
        return got.version == updated.version;
      },
      5s));
  const auto delay = std::chrono::steady_clock::now() - written_at;
  EXPECT_LT(delay, 2s);
  ::testing::Test::RecordProperty(
      "propagation_ms",
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(delay).count()));

  // No events: the reader's near cache is not trusted, so a write through
  // the other server is read at once (from Redis) rather than a minute later.
  broker_->Stop();
  std::this_thread::sleep_for(500ms);
  patch.__set_full_name("Third");
  via_writer->updateUser(updated, testing::kAdminToken, user.id, patch);
  via_reader->getUser(got, testing::kReaderToken, user.id);
  EXPECT_EQ(got.version, updated.version);
  via_reader->getUser(got, testing::kReaderToken, user.id);
  EXPECT_EQ(got.full_name, "Third");
  broker_->Start();
}

// The staleness a reader can see through a second server: a writer updates
// hot users through one server while readers read them through the other,
// whose near cache would keep each entry for a minute. A read older than a
// version acknowledged before the read began is stale; for how long is
// from that acknowledgement to the read's end. The events bound it far
// below the near cache's lifetime (measured: RecordProperty).
TEST_F(ChangeEventsTest, ReadsThroughAnotherServerAreStaleForAtMostThePropagationDelay) {
  const std::vector<std::pair<std::string, std::string>> env = {
      {"POLYCRUD_NEAR_CACHE_TTL_MS", "60000"}};
  testing::ServerProcess writer_server(ServerWithEvents(env));
  testing::ServerProcess reader_server(ServerWithEvents(env));
  constexpr int kUsers = 20;
  std::vector<std::int64_t> ids;
  {
    testing::ThriftClient client(writer_server.thrift_port());
    for (int i = 0; i < kUsers; ++i) {
      gen::User user;
      client->createUser(user, testing::kAdminToken,
                         testing::TestDraft(testing::UniqueName("stale")));
      ids.push_back(user.id);
    }
  }
  using Clock = std::chrono::steady_clock;
  struct Acked {
    std::int64_t version = 1;
    std::map<std::int64_t, Clock::time_point> at;  // version -> acknowledged
  };
  std::mutex mu;
  std::map<std::int64_t, Acked> acked;
  for (const std::int64_t id : ids) acked[id].at[1] = Clock::now();
  const auto until = Clock::now() + 4s;
  std::atomic<int> writes{0};
  std::thread writer([&] {
    testing::ThriftClient client(writer_server.thrift_port());
    for (int n = 0; Clock::now() < until; ++n) {
      const std::int64_t id = ids[static_cast<std::size_t>(n % kUsers)];
      gen::UserPatch patch;
      patch.__set_full_name("v" + std::to_string(n));
      gen::User updated;
      client->updateUser(updated, testing::kAdminToken, id, patch);
      const std::lock_guard lock(mu);
      acked[id].version = std::max(acked[id].version, updated.version);
      acked[id].at[updated.version] = Clock::now();
      ++writes;
      std::this_thread::sleep_for(2ms);
    }
  });
  std::vector<double> stale_ms;
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  std::mutex stale_mu;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      testing::ThriftClient client(reader_server.thrift_port());
      for (int n = r; Clock::now() < until; ++n) {
        const std::int64_t id = ids[static_cast<std::size_t>(n % kUsers)];
        std::int64_t known = 0;
        {
          const std::lock_guard lock(mu);
          known = acked[id].version;
        }
        gen::User got;
        client->getUser(got, testing::kReaderToken, id);
        ++reads;
        std::this_thread::sleep_for(1ms);  // readers, not a saturating load
        if (got.version >= known) continue;
        const auto end = Clock::now();
        Clock::time_point newer_at;
        {
          const std::lock_guard lock(mu);
          newer_at = acked[id].at.upper_bound(got.version)->second;
        }
        const std::lock_guard lock(stale_mu);
        stale_ms.push_back(std::chrono::duration<double, std::milli>(end - newer_at).count());
      }
    });
  }
  writer.join();
  for (std::thread& reader : readers) reader.join();
  ASSERT_GT(writes.load(), 100);
  ASSERT_GT(reads.load(), 1000);
  ASSERT_FALSE(stale_ms.empty()) << "no read was stale: the test saw nothing";
  std::sort(stale_ms.begin(), stale_ms.end());
  const double worst = stale_ms.back();
  const double p50 = stale_ms[stale_ms.size() / 2];
  const double p99 = stale_ms[stale_ms.size() * 99 / 100];
  ::testing::Test::RecordProperty("reads", reads.load());
  ::testing::Test::RecordProperty("stale_reads", static_cast<int>(stale_ms.size()));
  ::testing::Test::RecordProperty("stale_p50_ms", static_cast<int>(p50));
  ::testing::Test::RecordProperty("stale_p99_ms", static_cast<int>(p99));
  ::testing::Test::RecordProperty("stale_max_ms", static_cast<int>(worst));
  // Without the events an entry would stay stale for up to the minute of
  // its lifetime; with them, for the propagation delay (a wide margin for
  // a loaded machine and the sanitizer build).
  EXPECT_LT(worst, 3000.0) << stale_ms.size() << " stale reads of " << reads.load();
}

}  // namespace
}  // namespace polycrud
