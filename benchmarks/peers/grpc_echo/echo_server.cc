// polycrud-grpc-echo: the ceiling of gRPC itself on this machine. A server
// of polycrud.v1.UserService built from Debian's gRPC that does no work: Ping
// answers at once and GetUser answers a made-up user of the asked id (the
// size of a real one), so polycrud-bench and h2load measure what the gRPC
// stack alone costs per call. Two ways to serve, as gRPC offers them:
//   --api callback  the callback API (gRPC's own threads run the handlers)
//   --api cq        the completion-queue API, one queue and thread per
//                   --threads (gRPC's performance notes: one queue per
//                   thread, about one thread per core)
// The face of polycrud-server is reported against both (docs/benchmarking.md).
#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "polycrud/v1/user_service.grpc.pb.h"

namespace {

namespace v1 = ::polycrud::v1;

void FillUser(std::int64_t id, v1::User& user) {
  const std::string n = std::to_string(id);
  user.set_id(id);
  user.set_username("user" + n);
  user.set_email("user" + n + "@example.com");
  user.set_full_name("User Number " + n);
  user.set_version(1);
  user.set_created_at_ms(1'700'000'000'000);
  user.set_updated_at_ms(1'700'000'000'000);
}

class CallbackEcho final : public v1::UserService::CallbackService {
 public:
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context,
                                 const v1::PingRequest* /*request*/,
                                 v1::PingResponse* response) override {
    response->set_server("polycrud-grpc-echo");
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* GetUser(grpc::CallbackServerContext* context,
                                    const v1::GetUserRequest* request,
                                    v1::GetUserResponse* response) override {
    FillUser(request->id(), *response->mutable_user());
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// Set before the server shuts down: no call is asked for after it.
std::atomic<bool> g_stopping{false};

// One outstanding call of the completion-queue server: asks for the next
// call of its method, answers it, and asks again.
class CqCall {
 public:
  virtual ~CqCall() = default;
  // `ok`: the event's outcome (false: the server is shutting down).
  virtual void Proceed(bool ok) = 0;
};

template <typename Request, typename Response>
class UnaryCall final : public CqCall {
 public:
  using RequestFn = void (v1::UserService::AsyncService::*)(
      grpc::ServerContext*, Request*, grpc::ServerAsyncResponseWriter<Response>*,
      grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);
  using AnswerFn = void (*)(const Request&, Response&);

  UnaryCall(v1::UserService::AsyncService& service, grpc::ServerCompletionQueue& queue,
            RequestFn request, AnswerFn answer)
      : service_(service), queue_(queue), request_(request), answer_(answer) {
    (service_.*request_)(&context_, &message_, &writer_, &queue_, &queue_, this);
  }

  void Proceed(bool ok) override {
    if (answered_ || !ok) {
      // Answered (or its answer failed: the client went away): ask for the
      // next call in its place, unless the server is stopping. A request
      // that fails (!ok before an answer) means the server shut down.
      if (answered_ && !g_stopping.load(std::memory_order_acquire)) {
        new UnaryCall(service_, queue_, request_, answer_);
      }
      delete this;
      return;
    }
    answered_ = true;
    Response response;
    answer_(message_, response);
    writer_.Finish(response, grpc::Status::OK, this);
  }

 private:
  v1::UserService::AsyncService& service_;
  grpc::ServerCompletionQueue& queue_;
  RequestFn request_;
  AnswerFn answer_;
  grpc::ServerContext context_;
  Request message_;
  grpc::ServerAsyncResponseWriter<Response> writer_{&context_};
  bool answered_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  std::string bind = "127.0.0.1";
  int port = 0;
  std::string api = "callback";
  int threads = 2;
  int outstanding = 64;
  CLI::App app{
      "polycrud-grpc-echo: polycrud.v1.UserService doing no work (Ping, and GetUser answering a "
      "made-up user), to measure what gRPC itself costs per call on this machine. Serves until "
      "SIGINT or SIGTERM."};
  app.set_version_flag("--version", POLYCRUD_VERSION);
  app.add_option("--bind", bind, "Address to listen on")->capture_default_str();
  app.add_option("--port", port, "Port")->required()->check(CLI::Range(1, 65535));
  app.add_option("--api", api, "callback: gRPC's callback API; cq: completion queues")
      ->check(CLI::IsMember({"callback", "cq"}))
      ->capture_default_str();
  app.add_option("--threads", threads, "cq: completion queues, a thread each")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--outstanding", outstanding, "cq: calls of each method asked for per queue")
      ->check(CLI::Range(1, 10'000))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  // Blocked before gRPC starts its threads, so only sigwait below takes them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // As polycrud-server does: Debian's Abseil leaves deadlock detection on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort(bind + ":" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &bound);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  CallbackEcho callback_service;
  v1::UserService::AsyncService async_service;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  if (api == "callback") {
    builder.RegisterService(&callback_service);
  } else {
    builder.RegisterService(&async_service);
    for (int i = 0; i < threads; ++i) queues.push_back(builder.AddCompletionQueue());
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound == 0) {
    std::fprintf(stderr, "polycrud-grpc-echo: cannot listen on %s:%d\n", bind.c_str(), port);
    return 1;
  }
  std::vector<std::thread> pollers;
  for (auto& queue : queues) {
    for (int i = 0; i < outstanding; ++i) {
      new UnaryCall<v1::PingRequest, v1::PingResponse>(
          async_service, *queue, &v1::UserService::AsyncService::RequestPing,
          [](const v1::PingRequest&, v1::PingResponse& r) { r.set_server("polycrud-grpc-echo"); });
      new UnaryCall<v1::GetUserRequest, v1::GetUserResponse>(
          async_service, *queue, &v1::UserService::AsyncService::RequestGetUser,
          [](const v1::GetUserRequest& q, v1::GetUserResponse& r) {
            FillUser(q.id(), *r.mutable_user());
          });
    }
    pollers.emplace_back([q = queue.get()] {
      void* tag = nullptr;
      bool ok = false;
      while (q->Next(&tag, &ok)) static_cast<CqCall*>(tag)->Proceed(ok);
    });
  }
  std::printf("polycrud-grpc-echo: %s API on %s:%d\n", api.c_str(), bind.c_str(), bound);
  std::fflush(stdout);

  int caught = 0;
  sigwait(&signals, &caught);
  g_stopping.store(true, std::memory_order_release);
  server->Shutdown(std::chrono::system_clock::now());
  for (auto& queue : queues) queue->Shutdown();
  for (std::thread& t : pollers) t.join();
  return 0;
}
