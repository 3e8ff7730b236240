// End-to-end tests of what is specific to polycrud-server's gRPC face: the
// standard health and reflection services, the bound on received messages,
// deadlines, bearer tokens in metadata and the status details (conflict
// kinds, offending field and retry hint in trailing metadata).
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "polycrud/v1/user_service.grpc.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/server_process.h"
#include "tests/support/settings.h"
#include "tests/support/stack.h"

namespace polycrud::testing {
namespace {

using namespace std::chrono_literals;
namespace v1 = ::polycrud::v1;
namespace health = ::grpc::health::v1;
namespace reflection = ::grpc::reflection::v1alpha;

// The server under test bounds received messages at this size.
constexpr int kMaxReceiveBytes = 64 * 1024;

std::shared_ptr<grpc::Channel> Connect(int port) {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                             grpc::InsecureChannelCredentials());
}

// A client context with a 10 s deadline and, unless empty, the given
// `authorization` metadata value.
std::unique_ptr<grpc::ClientContext> Context(const std::string& authorization = "") {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + 10s);
  if (!authorization.empty()) context->AddMetadata("authorization", authorization);
  return context;
}

std::string Bearer(const std::string& token) { return "Bearer " + token; }

std::string Trailer(const grpc::ClientContext& context, const std::string& key) {
  const auto& trailers = context.GetServerTrailingMetadata();
  const auto it = trailers.find(key);
  return it == trailers.end() ? "" : std::string(it->second.data(), it->second.size());
}

v1::CreateUserRequest Draft(const std::string& name, const std::string& full_name = "gRPC User") {
  v1::CreateUserRequest request;
  request.set_username(name);
  request.set_email(name + "@example.com");
  request.set_full_name(full_name);
  return request;
}

health::HealthCheckResponse::ServingStatus CheckHealth(grpc::Channel& channel,
                                                       const std::string& service,
                                                       grpc::Status* status = nullptr) {
  auto stub = health::Health::NewStub(std::shared_ptr<grpc::Channel>(&channel, [](auto*) {}));
  health::HealthCheckRequest request;
  request.set_service(service);
  health::HealthCheckResponse response;
  auto context = Context();
  const grpc::Status result = stub->Check(context.get(), request, &response);
  if (status != nullptr) *status = result;
  return result.ok() ? response.status() : health::HealthCheckResponse::UNKNOWN;
}

class GrpcFaceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess(
        {.protocols = {"grpc"},
         .extra_env = {{"POLYCRUD_GRPC_MAX_RECEIVE_BYTES", std::to_string(kMaxReceiveBytes)}}});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerProcess* server_;

  std::shared_ptr<grpc::Channel> channel_ = Connect(server_->port("grpc"));
  std::unique_ptr<v1::UserService::Stub> stub_ = v1::UserService::NewStub(channel_);

  v1::User MustCreate(const std::string& name) {
    v1::CreateUserResponse response;
    auto context = Context(Bearer(kAdminToken));
    const grpc::Status status = stub_->CreateUser(context.get(), Draft(name), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.user();
  }
};
ServerProcess* GrpcFaceTest::server_ = nullptr;

TEST_F(GrpcFaceTest, HealthServiceReportsServing) {
  EXPECT_EQ(CheckHealth(*channel_, ""), health::HealthCheckResponse::SERVING);
  EXPECT_EQ(CheckHealth(*channel_, "polycrud.v1.UserService"),
            health::HealthCheckResponse::SERVING);
  grpc::Status status;
  CheckHealth(*channel_, "no.such.Service", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcFaceTest, ReflectionListsAndDescribesTheUserService) {
  auto stub = reflection::ServerReflection::NewStub(channel_);
  auto context = Context();
  auto stream = stub->ServerReflectionInfo(context.get());

  reflection::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  reflection::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  bool listed = false;
  for (const auto& service : response.list_services_response().service()) {
    listed = listed || service.name() == "polycrud.v1.UserService";
  }
  EXPECT_TRUE(listed) << response.DebugString();

  reflection::ServerReflectionRequest describe;
  describe.set_file_containing_symbol("polycrud.v1.UserService");
  ASSERT_TRUE(stream->Write(describe));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_GE(response.file_descriptor_response().file_descriptor_proto_size(), 1)
      << response.DebugString();
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(response.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(file.package(), "polycrud.v1");
  ASSERT_EQ(file.service_size(), 1);
  EXPECT_EQ(file.service(0).method_size(), 8);

  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(GrpcFaceTest, OversizedMessageIsRejectedAndTheChannelStaysUsable) {
  const std::string name = UniqueName("big");
  v1::CreateUserResponse response;
  auto context = Context(Bearer(kAdminToken));
  const grpc::Status status = stub_->CreateUser(
      context.get(), Draft(name, std::string(kMaxReceiveBytes + 1024, 'x')), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();

  // Nothing was created, and the same channel still works.
  MustCreate(name);
}

TEST_F(GrpcFaceTest, ExpiredDeadlineIsDeadlineExceededAndDoesNoWork) {
  const std::string name = UniqueName("late");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() - 1s);
  context.AddMetadata("authorization", Bearer(kAdminToken));
  v1::CreateUserResponse response;
  const grpc::Status status = stub_->CreateUser(&context, Draft(name), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  MustCreate(name);  // the late call created nothing
}

TEST_F(GrpcFaceTest, DuplicateIsAlreadyExistsAndVersionMismatchIsAborted) {
  const v1::User user = MustCreate(UniqueName("conflict"));
  {
    v1::CreateUserRequest again = Draft(user.username());
    again.set_email("other-" + user.email());
    v1::CreateUserResponse response;
    auto context = Context(Bearer(kAdminToken));
    EXPECT_EQ(stub_->CreateUser(context.get(), again, &response).error_code(),
              grpc::StatusCode::ALREADY_EXISTS);
  }
  {
    v1::UpdateUserRequest update;
    update.set_id(user.id());
    update.set_full_name("Stale Writer");
    update.set_expected_version(user.version() + 5);
    v1::UpdateUserResponse response;
    auto context = Context(Bearer(kAdminToken));
    EXPECT_EQ(stub_->UpdateUser(context.get(), update, &response).error_code(),
              grpc::StatusCode::ABORTED);
  }
}

TEST_F(GrpcFaceTest, BearerTokenTravelsInMetadata) {
  const v1::User user = MustCreate(UniqueName("auth"));
  v1::GetUserRequest request;
  request.set_id(user.id());
  for (const std::string& bad :
       {std::string(""), std::string("Basic dXNlcjpwYXNz"), std::string("Bearer"),
        std::string(kReaderToken), Bearer("not-a-configured-token")}) {
    v1::GetUserResponse response;
    auto context = Context(bad);
    EXPECT_EQ(stub_->GetUser(context.get(), request, &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED)
        << "authorization: " << bad;
  }
  // The scheme is case-insensitive.
  v1::GetUserResponse response;
  auto context = Context(std::string("bearer ") + kReaderToken);
  const grpc::Status status = stub_->GetUser(context.get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.user().id(), user.id());
  // Ping needs no token.
  v1::PingResponse pong;
  auto ping_context = Context();
  ASSERT_TRUE(stub_->Ping(ping_context.get(), v1::PingRequest(), &pong).ok());
  EXPECT_EQ(pong.server().rfind("polycrud ", 0), 0u) << pong.server();
}

TEST_F(GrpcFaceTest, TheRequestIdComesBackInInitialMetadata) {
  auto server_metadata = [](const grpc::ClientContext& context) {
    const auto& metadata = context.GetServerInitialMetadata();
    const auto it = metadata.find("x-request-id");
    return it == metadata.end() ? std::string("<none>")
                                : std::string(it->second.data(), it->second.size());
  };
  v1::GetUserRequest request;
  request.set_id(1);
  v1::GetUserResponse response;
  auto named = Context(Bearer(kReaderToken));
  named->AddMetadata("x-request-id", "grpc-trace-9");
  (void)stub_->GetUser(named.get(), request, &response);
  EXPECT_EQ(server_metadata(*named), "grpc-trace-9");
  // None sent, or an unusable one: a new id of 16 hex digits, different each call.
  auto anonymous = Context(Bearer(kReaderToken));
  (void)stub_->GetUser(anonymous.get(), request, &response);
  auto unusable = Context(Bearer(kReaderToken));
  unusable->AddMetadata("x-request-id", "no spaces allowed");
  (void)stub_->GetUser(unusable.get(), request, &response);
  EXPECT_EQ(server_metadata(*anonymous).size(), 16u) << server_metadata(*anonymous);
  EXPECT_EQ(server_metadata(*unusable).size(), 16u) << server_metadata(*unusable);
  EXPECT_NE(server_metadata(*anonymous), server_metadata(*unusable));
}

TEST_F(GrpcFaceTest, InvalidArgumentNamesTheFieldInTrailingMetadata) {
  v1::CreateUserResponse response;
  auto context = Context(Bearer(kAdminToken));
  const grpc::Status status = stub_->CreateUser(context.get(), Draft("Not Valid"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(status.error_message().empty());
  EXPECT_EQ(Trailer(*context, "polycrud-field"), "username");
}

TEST_F(GrpcFaceTest, UpdateLeavesUnsetOptionalFieldsAlone) {
  const v1::User user = MustCreate(UniqueName("patch"));
  v1::UpdateUserRequest update;
  update.set_id(user.id());
  update.set_full_name("");  // set, and empty: invalid, not "unset"
  v1::UpdateUserResponse response;
  auto context = Context(Bearer(kAdminToken));
  EXPECT_EQ(stub_->UpdateUser(context.get(), update, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Trailer(*context, "polycrud-field"), "full_name");

  update.set_full_name("Only The Name");
  auto context2 = Context(Bearer(kAdminToken));
  const grpc::Status status = stub_->UpdateUser(context2.get(), update, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.user().full_name(), "Only The Name");
  EXPECT_EQ(response.user().email(), user.email());
  EXPECT_EQ(response.user().version(), 2);
}

TEST(GrpcDegradedTest, HealthIsNotServingWhileMysqlAndRedisAreBothDown) {
  MariadbInstance mysql("grpc-health-mysql");
  RedisInstance redis("grpc-health-redis");
  ServerProcess server(
      {.protocols = {"grpc"}, .mysql_port = mysql.port(), .redis_port = redis.port()});
  auto channel = Connect(server.port("grpc"));
  const auto eventually = [&](health::HealthCheckResponse::ServingStatus wanted) {
    return Eventually([&] { return CheckHealth(*channel, "") == wanted; }, 15s);
  };
  EXPECT_TRUE(eventually(health::HealthCheckResponse::SERVING));
  redis.Stop();
  std::this_thread::sleep_for(2500ms);  // one dependency down: still serving
  EXPECT_EQ(CheckHealth(*channel, ""), health::HealthCheckResponse::SERVING);
  mysql.Stop();
  EXPECT_TRUE(eventually(health::HealthCheckResponse::NOT_SERVING));
  EXPECT_EQ(CheckHealth(*channel, "polycrud.v1.UserService"),
            health::HealthCheckResponse::NOT_SERVING);
  mysql.Start();
  EXPECT_TRUE(eventually(health::HealthCheckResponse::SERVING));
}

// With --drain-ms, SIGTERM first turns the health service to NOT_SERVING,
// calls still served, so a balancer stops sending before the face goes.
TEST(GrpcShutdownTest, DrainReportsNotServingWhileStillServingThenStops) {
  ServerProcess server({.protocols = {"grpc"}, .extra_env = {{"POLYCRUD_DRAIN_MS", "4000"}}});
  auto channel = Connect(server.port("grpc"));
  ASSERT_TRUE(Eventually(
      [&] { return CheckHealth(*channel, "") == health::HealthCheckResponse::SERVING; }, 15s));
  const auto signalled = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  EXPECT_TRUE(Eventually(
      [&] { return CheckHealth(*channel, "") == health::HealthCheckResponse::NOT_SERVING; },
      2500ms));
  auto stub = v1::UserService::NewStub(channel);
  v1::CreateUserResponse created;
  auto context = Context(Bearer(kAdminToken));
  const grpc::Status status =
      stub->CreateUser(context.get(), Draft(UniqueName("grpcdrain")), &created);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(server.Wait(), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - signalled, 3900ms) << "stopped before the drain";
}

// Freezes a private MariaDB (SIGSTOP) so calls that reach MySQL stay in
// flight, until Resume() or destruction.
class FrozenMysql {
 public:
  explicit FrozenMysql(const std::string& instance_name) {
    std::ifstream in(Setting("POLYCRUD_TEST_SCRATCH") + "/" + instance_name + "/mysqld.pid");
    in >> pid_;
    if (pid_ <= 0 || kill(pid_, SIGSTOP) != 0) throw std::runtime_error("cannot freeze mariadbd");
  }
  ~FrozenMysql() { Resume(); }
  void Resume() {
    if (pid_ > 0) kill(pid_, SIGCONT);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// Long enough for a call sent by another thread to reach its worker on a
// loaded machine, short enough to stay within MySQL's 5 s read timeout.
constexpr auto kSettle = 700ms;

// ListUsers reads straight from MySQL, so it blocks while MySQL is frozen.
grpc::Status ListOnePage(v1::UserService::Stub& stub, grpc::ClientContext* context = nullptr) {
  v1::ListUsersRequest request;
  request.set_limit(1);
  v1::ListUsersResponse response;
  auto own = Context(Bearer(kReaderToken));
  return stub.ListUsers(context != nullptr ? context : own.get(), request, &response);
}

TEST(GrpcShutdownTest, SigtermLetsRunningCallsFinish) {
  MariadbInstance mysql("grpc-drain-mysql");
  RedisInstance redis("grpc-drain-redis");
  ServerProcess server({.protocols = {"grpc"},
                        .mysql_port = mysql.port(),
                        .redis_port = redis.port(),
                        .extra_env = {{"POLYCRUD_GRPC_SHUTDOWN_GRACE_MS", "20000"}}});
  auto stub = v1::UserService::NewStub(Connect(server.port("grpc")));
  ASSERT_TRUE(ListOnePage(*stub).ok());  // the pool holds a live connection now

  FrozenMysql frozen("grpc-drain-mysql");
  grpc::Status running;
  std::thread call([&] { running = ListOnePage(*stub); });
  std::this_thread::sleep_for(kSettle);  // the call is now waiting on MySQL
  int exit_code = -2;
  std::thread terminate([&] { exit_code = server.Terminate(); });
  std::this_thread::sleep_for(500ms);
  frozen.Resume();
  call.join();
  terminate.join();
  EXPECT_TRUE(running.ok()) << running.error_code() << " " << running.error_message();
  EXPECT_EQ(exit_code, 0);
}

TEST(GrpcOverloadTest, FullWorkerQueueIsResourceExhaustedWithRetryHint) {
  MariadbInstance mysql("grpc-overload-mysql");
  RedisInstance redis("grpc-overload-redis");
  ServerProcess server(
      {.protocols = {"grpc"},
       .mysql_port = mysql.port(),
       .redis_port = redis.port(),
       .extra_env = {{"POLYCRUD_GRPC_WORKERS", "1"}, {"POLYCRUD_GRPC_MAX_QUEUED_CALLS", "1"}}});
  auto stub = v1::UserService::NewStub(Connect(server.port("grpc")));
  ASSERT_TRUE(ListOnePage(*stub).ok());

  FrozenMysql frozen("grpc-overload-mysql");
  grpc::Status first, second;
  std::thread running([&] { first = ListOnePage(*stub); });  // occupies the worker
  std::this_thread::sleep_for(kSettle);
  std::thread queued([&] { second = ListOnePage(*stub); });  // fills the queue
  std::this_thread::sleep_for(kSettle);
  auto context = Context(Bearer(kReaderToken));
  const grpc::Status refused = ListOnePage(*stub, context.get());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_GT(std::stoll("0" + Trailer(*context, "retry-after-ms")), 0);
  // Ping needs no worker and still answers.
  v1::PingResponse pong;
  auto ping_context = Context();
  EXPECT_TRUE(stub->Ping(ping_context.get(), v1::PingRequest(), &pong).ok());
  frozen.Resume();
  running.join();
  queued.join();
  EXPECT_TRUE(first.ok()) << first.error_message();
  EXPECT_TRUE(second.ok()) << second.error_message();
}

TEST(GrpcDeadlineTest, QueuedCallPastItsDeadlineIsNotRun) {
  MariadbInstance mysql("grpc-deadline-mysql");
  RedisInstance redis("grpc-deadline-redis");
  ServerProcess server({.protocols = {"grpc"},
                        .mysql_port = mysql.port(),
                        .redis_port = redis.port(),
                        .extra_env = {{"POLYCRUD_GRPC_WORKERS", "1"}}});
  auto stub = v1::UserService::NewStub(Connect(server.port("grpc")));
  ASSERT_TRUE(ListOnePage(*stub).ok());

  const std::string name = UniqueName("expired");
  grpc::Status blocker, late;
  {
    FrozenMysql frozen("grpc-deadline-mysql");
    std::thread running([&] { blocker = ListOnePage(*stub); });  // occupies the only worker
    std::this_thread::sleep_for(kSettle);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 200ms);
    context.AddMetadata("authorization", Bearer(kAdminToken));
    v1::CreateUserResponse response;
    late = stub->CreateUser(&context, Draft(name), &response);  // waits in the queue
    std::this_thread::sleep_for(kSettle);
    frozen.Resume();
    running.join();
  }
  EXPECT_TRUE(blocker.ok()) << blocker.error_message();
  EXPECT_EQ(late.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server dropped the expired call instead of running it late.
  v1::CreateUserResponse response;
  auto context = Context(Bearer(kAdminToken));
  const grpc::Status again = stub->CreateUser(context.get(), Draft(name), &response);
  EXPECT_TRUE(again.ok()) << again.error_code() << " " << again.error_message();
}

// A connection nobody uses is closed by the server (GOAWAY), so forgotten
// clients give their descriptors back; the client reconnects on its next call.
TEST(GrpcConnectionLimitsTest, AnIdleConnectionIsClosedAndTheClientReconnects) {
  ServerProcess server(
      {.protocols = {"grpc"}, .extra_args = {"--grpc-max-connection-idle-ms", "300"}});
  auto channel = Connect(server.port("grpc"));
  auto stub = v1::UserService::NewStub(channel);
  v1::PingResponse pong;
  auto context = Context();
  ASSERT_TRUE(stub->Ping(context.get(), v1::PingRequest(), &pong).ok());
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  // After the GOAWAY the channel leaves READY on its own.
  // (gRPC checks idleness every few seconds: about 5 s here.)
  EXPECT_TRUE(Eventually([&] { return channel->GetState(false) != GRPC_CHANNEL_READY; }, 15s));
  auto again = Context();
  EXPECT_TRUE(stub->Ping(again.get(), v1::PingRequest(), &pong).ok());
}

TEST(GrpcShutdownTest, SigtermStopsPromptlyWithIdleClientsConnected) {
  ServerProcess server({.protocols = {"grpc"}});
  auto channel = Connect(server.port("grpc"));
  auto stub = v1::UserService::NewStub(channel);
  v1::PingResponse pong;
  auto context = Context();
  ASSERT_TRUE(stub->Ping(context.get(), v1::PingRequest(), &pong).ok());
  // Nothing is running, so the idle connection of this client must not hold
  // the shutdown up.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server.Terminate(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

}  // namespace
}  // namespace polycrud::testing
