// ProtocolClient over the generated gRPC C++ stub of
// proto/polycrud/v1/user_service.proto. Each client has its own channel with
// a local subchannel pool, so every client is one HTTP/2 connection of its
// own (channels with equal arguments would otherwise share one); the channel
// reconnects by itself after the server closed it. Calls run on gRPC's
// asynchronous API, on a completion queue of the calling thread.
#include <absl/synchronization/mutex.h>
#include <grpc/support/time.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "clients/grpc_user_convert.h"
#include "clients/protocol_client.h"
#include "clients/protocol_clients.h"
#include "polycrud/v1/user_service.grpc.pb.h"
#include "runtime/io_wait.h"

namespace polycrud::clients {
namespace {

using runtime::CallDone;
using runtime::CompletionSource;
using runtime::IoClock;
using runtime::IoWaiter;

namespace v1 = ::polycrud::v1;

// The gRPC status mapped back to the core code it stands for (API.md).
CallStatus FromGrpc(const grpc::Status& status, const grpc::ClientContext& context) {
  CallStatus out;
  out.message = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      out.code = StatusCode::kOk;
      break;
    case grpc::StatusCode::INVALID_ARGUMENT: {
      out.code = StatusCode::kInvalidArgument;
      const auto& trailers = context.GetServerTrailingMetadata();
      if (auto it = trailers.find("polycrud-field"); it != trailers.end()) {
        out.field.assign(it->second.data(), it->second.size());
      }
      break;
    }
    case grpc::StatusCode::UNAUTHENTICATED:
      out.code = StatusCode::kUnauthenticated;
      break;
    case grpc::StatusCode::PERMISSION_DENIED:
      out.code = StatusCode::kPermissionDenied;
      break;
    case grpc::StatusCode::NOT_FOUND:
      out.code = StatusCode::kNotFound;
      break;
    case grpc::StatusCode::ALREADY_EXISTS:
      out.code = StatusCode::kConflict;
      out.conflict = ConflictKind::kDuplicate;
      break;
    case grpc::StatusCode::ABORTED:
      out.code = StatusCode::kConflict;
      out.conflict = ConflictKind::kVersionMismatch;
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      out.code = StatusCode::kResourceExhausted;
      break;
    case grpc::StatusCode::UNAVAILABLE: {
      out.code = StatusCode::kUnavailable;
      // The server's UNAVAILABLE always carries a retry hint; the channel's
      // own (connection refused or lost) does not.
      const auto& trailers = context.GetServerTrailingMetadata();
      out.transport_failure = trailers.find("retry-after-ms") == trailers.end();
      break;
    }
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      // The client's deadline passed before an answer arrived.
      out.code = StatusCode::kInternal;
      out.transport_failure = true;
      break;
    default:
      // INTERNAL, and anything the contract does not use (a failure either way).
      out.code = StatusCode::kInternal;
      out.message = "gRPC status " + std::to_string(status.error_code()) + ": " + out.message;
      break;
  }
  return out;
}

// The calling thread's completion queue. A call started on it completes
// when this thread asks the queue for its next event: with gRPC's epoll
// engine the asking thread also does the connection's reads and writes, so
// a call is done where it was made, with no hand-off to another thread.
class ThreadQueue final : public CompletionSource {
 public:
  static ThreadQueue& Get() {
    thread_local ThreadQueue queue;
    return queue;
  }
  ~ThreadQueue() override {
    queue_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) {
    }
  }
  grpc::CompletionQueue* queue() { return &queue_; }

  void Collect(IoClock::time_point deadline) override {
    void* tag = nullptr;
    bool ok = false;
    for (gpr_timespec until = ToGpr(deadline);
         queue_.AsyncNext(&tag, &ok, until) == grpc::CompletionQueue::GOT_EVENT;
         until = gpr_inf_past(GPR_CLOCK_MONOTONIC)) {
      static_cast<CallDone*>(tag)->Notify();
    }
  }

 private:
  ThreadQueue() = default;
  static gpr_timespec ToGpr(IoClock::time_point deadline) {
    if (deadline == IoClock::time_point::max()) return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    // Compared before subtracting: time_point::min() (only what has come)
    // minus now would overflow.
    const IoClock::time_point now = IoClock::now();
    if (deadline <= now) return gpr_inf_past(GPR_CLOCK_MONOTONIC);
    const auto left = deadline - now;
    return gpr_time_add(
        gpr_now(GPR_CLOCK_MONOTONIC),
        gpr_time_from_nanos(std::chrono::duration_cast<std::chrono::nanoseconds>(left).count(),
                            GPR_TIMESPAN));
  }

  grpc::CompletionQueue queue_;
};

class GrpcProtocolClient final : public ProtocolClient {
 public:
  explicit GrpcProtocolClient(const ClientOptions& options)
      : timeout_(std::chrono::milliseconds(options.timeout_ms)), stub_(NewStub(options)) {}
  std::string_view protocol() const override { return "grpc"; }

  Outcome<std::string> Ping() override {
    const v1::PingRequest request;
    return Call<std::string, v1::PingResponse>(
        "",
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub_->AsyncPing(c, request, q);
        },
        [](const v1::PingResponse& r) { return r.server(); });
  }
  Outcome<User> CreateUser(const std::string& token, const UserDraft& draft) override {
    v1::CreateUserRequest request;
    request.set_username(draft.username);
    request.set_email(draft.email);
    request.set_full_name(draft.full_name);
    return Call<User, v1::CreateUserResponse>(
        token,
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub_->AsyncCreateUser(c, request, q);
        },
        [](const v1::CreateUserResponse& r) { return FromProto(r.user()); });
  }
  Outcome<User> GetUser(const std::string& token, std::int64_t id) override {
    v1::GetUserRequest request;
    request.set_id(id);
    return Call<User, v1::GetUserResponse>(
        token,
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub_->AsyncGetUser(c, request, q);
        },
        [](const v1::GetUserResponse& r) { return FromProto(r.user()); });
  }
  Outcome<std::vector<User>> BatchGetUsers(const std::string& token,
                                           const std::vector<std::int64_t>& ids) override {
    v1::BatchGetUsersRequest request;
    for (std::int64_t id : ids) request.add_ids(id);
    return Call<std::vector<User>, v1::BatchGetUsersResponse>(
        token,
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub_->AsyncBatchGetUsers(c, request, q);
        },
        [](const v1::BatchGetUsersResponse& r) {
          std::vector<User> users;
          for (const auto& u : r.users()) users.push_back(FromProto(u));
          return users;
        });
  }
  Outcome<User> UpdateUser(const std::string& token, std::int64_t id,
                           const UserPatch& patch) override {
    v1::UpdateUserRequest request;
    request.set_id(id);
    if (patch.email) request.set_email(*patch.email);
    if (patch.full_name) request.set_full_name(*patch.full_name);
    request.set_expected_version(patch.expected_version);
    return Call<User, v1::UpdateUserResponse>(
        token,
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub_->AsyncUpdateUser(c, request, q);
        },
        [](const v1::UpdateUserResponse& r) { return FromProto(r.user()); });
  }
  Outcome<Empty> DeleteUser(const std::string& token, std::int64_t id) override {
    v1::DeleteUserRequest request;
    request.set_id(id);
    return Call<Empty, v1::DeleteUserResponse>(
        token,
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub_->AsyncDeleteUser(c, request, q);
        },
        [](const v1::DeleteUserResponse&) { return Empty{}; });
  }
  Outcome<std::vector<User>> SearchUsers(const std::string& token, const std::string& prefix,
                                         std::int32_t limit) override {
    v1::SearchUsersRequest request;
    request.set_prefix(prefix);
    request.set_limit(limit);
    return Call<std::vector<User>, v1::SearchUsersResponse>(
        token,
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub_->AsyncSearchUsers(c, request, q);
        },
        [](const v1::SearchUsersResponse& r) {
          std::vector<User> users;
          for (const auto& u : r.users()) users.push_back(FromProto(u));
          return users;
        });
  }
  Outcome<UserPage> ListUsers(const std::string& token, std::int64_t after_id,
                              std::int32_t limit) override {
    v1::ListUsersRequest request;
    request.set_after_id(after_id);
    request.set_limit(limit);
    return Call<UserPage, v1::ListUsersResponse>(
        token,
        [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
          return stub_->AsyncListUsers(c, request, q);
        },
        [](const v1::ListUsersResponse& r) {
          UserPage page;
          for (const auto& u : r.users()) page.users.push_back(FromProto(u));
          page.next_after_id = r.next_after_id();
          return page;
        });
  }

 private:
  // Runs one call with the token as bearer metadata (none if empty) and maps
  // the status back; `result` converts the response on success. `start`
  // starts the call on this thread's completion queue, and its completion
  // is collected from there (CallDone with the queue as its source): by the
  // thread's IoWaiter if it has one, which meanwhile runs other clients,
  // else right here, blocking like the sync stub.
  template <typename T, typename Response, typename StartFn, typename ResultFn>
  Outcome<T> Call(const std::string& token, StartFn&& start, ResultFn&& result) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout_);
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    ThreadQueue& queue = ThreadQueue::Get();
    Response response;
    grpc::Status status;
    CallDone done(&queue);
    const auto reader = std::forward<StartFn>(start)(&context, queue.queue());
    reader->Finish(&response, &status, &done);
    done.Wait();
    Outcome<T> out;
    out.status = FromGrpc(status, context);
    if (status.ok()) out.value = std::forward<ResultFn>(result)(response);
    return out;
  }

  static std::unique_ptr<v1::UserService::Stub> NewStub(const ClientOptions& options) {
    // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's
    // deadlock detector on: every lock gRPC takes also updates a global lock
    // graph (about 7% of this client's CPU per call). gRPC's own builds run
    // without it, and a load generator must not charge it to the protocol.
    // Process-wide and harmless to repeat.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    return v1::UserService::NewStub(
        grpc::CreateCustomChannel(options.host + ":" + std::to_string(options.port),
                                  Credentials(options.tls), ChannelArguments()));
  }

  // TLS when a CA is given, with a client certificate if one is.
  static std::shared_ptr<grpc::ChannelCredentials> Credentials(const tls::TlsFiles& files) {
    if (files.ca.empty() && !files.enabled()) return grpc::InsecureChannelCredentials();
    grpc::SslCredentialsOptions ssl;
    if (!files.ca.empty()) ssl.pem_root_certs = tls::ReadPemFile(files.ca);
    if (!files.cert.empty()) {
      ssl.pem_cert_chain = tls::ReadPemFile(files.cert);
      ssl.pem_private_key = tls::ReadPemFile(files.key);
    }
    return grpc::SslCredentials(ssl);
  }
  static grpc::ChannelArguments ChannelArguments() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return args;
  }

  std::chrono::milliseconds timeout_;
  std::unique_ptr<v1::UserService::Stub> stub_;
};

}  // namespace

std::unique_ptr<ProtocolClient> MakeGrpcProtocolClient(const ClientOptions& options) {
  return std::make_unique<GrpcProtocolClient>(options);
}

}  // namespace polycrud::clients
