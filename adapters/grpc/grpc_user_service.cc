// GrpcUserService: see grpc_user_service.h.
#include "adapters/grpc/grpc_user_service.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>
#include <exception>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace polycrud::grpc_adapter {
namespace {

// Back-off hint when the face itself refuses a call (worker queue full).
constexpr std::int64_t kOverloadRetryAfterMs = 100;

// Case-insensitive ASCII prefix test (auth schemes are case-insensitive).
bool StartsWithIgnoringCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// The reactor of one unary call: counts the call as in flight from its
// start until gRPC is done with it (status sent, or the call cancelled), so
// a graceful stop knows when every answer has left.
class CountedReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit CountedReactor(std::atomic<std::int64_t>& in_flight) : in_flight_(in_flight) {
    in_flight_.fetch_add(1, std::memory_order_acq_rel);
  }
  void OnDone() override {
    in_flight_.fetch_sub(1, std::memory_order_acq_rel);
    delete this;
  }
  // Both reactions (OnDone above, the inherited empty OnCancel) are trivial
  // and never block, so gRPC may run them on the thread that completed the
  // call. Otherwise gRPC 1.51 hands every OnDone to its executor threads: one
  // thread wake-up and two context switches per call, which on two cores
  // was the largest single cost of a Ping. (This is the hook gRPC's own
  // DefaultReactor uses; ServerUnaryReactor has no public equivalent.)
  bool InternalInlineable() override { return true; }

 private:
  std::atomic<std::int64_t>& in_flight_;
};

Status AssignUser(v1::User* out, const StatusOr<User>& user) {
  if (!user.ok()) return user.status();
  ToProto(*user, *out);
  return Status::Ok();
}

}  // namespace

grpc::Status ToGrpcStatus(const Status& status, grpc::ServerContextBase& context,
                          std::string_view request_id) {
  switch (status.code()) {
    case StatusCode::kOk:
      return grpc::Status::OK;
    case StatusCode::kInvalidArgument:
      if (!status.field().empty()) context.AddTrailingMetadata(kFieldMetadataKey, status.field());
      return {grpc::StatusCode::INVALID_ARGUMENT, status.message()};
    case StatusCode::kUnauthenticated:
      return {grpc::StatusCode::UNAUTHENTICATED, status.message()};
    case StatusCode::kPermissionDenied:
      return {grpc::StatusCode::PERMISSION_DENIED, status.message()};
    case StatusCode::kNotFound:
      return {grpc::StatusCode::NOT_FOUND, status.message()};
    case StatusCode::kConflict:
      switch (status.conflict_kind()) {
        case ConflictKind::kDuplicate:
          return {grpc::StatusCode::ALREADY_EXISTS, status.message()};
        case ConflictKind::kVersionMismatch:
        // An unqualified conflict is a concurrency conflict: the client
        // should re-read and retry, which is what ABORTED means.
        case ConflictKind::kNone:
          return {grpc::StatusCode::ABORTED, status.message()};
      }
      break;
    case StatusCode::kResourceExhausted:
      spdlog::warn("grpc [{}]: {}", request_id, status.ToString());
      context.AddTrailingMetadata(kRetryAfterMetadataKey, std::to_string(status.retry_after_ms()));
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, "overloaded, retry later"};
    case StatusCode::kUnavailable:
      spdlog::warn("grpc [{}]: {}", request_id, status.ToString());
      context.AddTrailingMetadata(kRetryAfterMetadataKey, std::to_string(status.retry_after_ms()));
      return {grpc::StatusCode::UNAVAILABLE, "service unavailable, retry later"};
    case StatusCode::kInternal:
      spdlog::error("grpc [{}]: {}", request_id, status.ToString());
      return {grpc::StatusCode::INTERNAL, "internal error"};
  }
  spdlog::error("grpc [{}]: unmapped status {}", request_id, status.ToString());
  return {grpc::StatusCode::INTERNAL, "internal error"};
}

std::string RequestIdOf(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(std::string(kRequestIdMetadataKey));
  return AcceptRequestId(it == metadata.end()
                             ? std::string_view()
                             : std::string_view(it->second.data(), it->second.size()));
}

std::string BearerToken(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) return {};
  std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kScheme = "bearer ";
  if (!StartsWithIgnoringCase(value, kScheme)) return {};
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  return std::string(value);
}

void ToProto(const User& user, v1::User& out) {
  out.set_id(user.id);
  out.set_username(user.username);
  out.set_email(user.email);
  out.set_full_name(user.full_name);
  out.set_version(user.version);
  out.set_created_at_ms(user.created_at_ms);
  out.set_updated_at_ms(user.updated_at_ms);
}

GrpcUserService::GrpcUserService(UserService& service, Metrics& metrics,
                                 runtime::WorkerPool& workers)
    : service_(service), metrics_(metrics), workers_(workers) {}

template <typename Fn>
grpc::ServerUnaryReactor* GrpcUserService::Run(grpc::CallbackServerContext* context,
                                               Operation operation, bool inline_call, Fn fn) {
  auto* reactor = new CountedReactor(in_flight_);  // deletes itself in OnDone
  std::string request_id = RequestIdOf(*context);
  context->AddInitialMetadata(std::string(kRequestIdMetadataKey), request_id);
  auto work = [this, context, reactor, operation, request_id, fn = std::move(fn)]() mutable {
    // Checked here, after any wait in the queue: work nobody waits for is
    // not done.
    if (context->IsCancelled()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled"));
      return;
    }
    if (context->deadline() <= std::chrono::system_clock::now()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded"));
      return;
    }
    ScopedCall call(metrics_, Protocol::kGrpc, operation);
    const std::string token = BearerToken(*context);
    Status status;
    try {
      status = fn(Caller(token, request_id));
    } catch (const std::exception& e) {
      spdlog::error("grpc {} [{}]: unexpected exception: {}", OperationName(operation), request_id,
                    e.what());
      status = Status::Internal(e.what());
    }
    call.Done(status.code());
    reactor->Finish(ToGrpcStatus(status, *context, request_id));
  };
  if (inline_call) {
    work();
  } else if (!workers_.Submit(std::function<void()>(std::move(work)))) {
    ScopedCall call(metrics_, Protocol::kGrpc, operation);
    const Status status =
        Status::ResourceExhausted("grpc worker queue full", kOverloadRetryAfterMs);
    call.Done(status.code());
    reactor->Finish(ToGrpcStatus(status, *context, request_id));
  }
  return reactor;
}

grpc::ServerUnaryReactor* GrpcUserService::Ping(grpc::CallbackServerContext* context,
                                                const v1::PingRequest* /*request*/,
                                                v1::PingResponse* response) {
  return Run(context, Operation::kPing, /*inline_call=*/true, [this, response](const Caller&) {
    response->set_server(service_.Ping());
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* GrpcUserService::CreateUser(grpc::CallbackServerContext* context,
                                                      const v1::CreateUserRequest* request,
                                                      v1::CreateUserResponse* response) {
  return Run(context, Operation::kCreateUser, false,
             [this, request, response](const Caller& caller) {
               return AssignUser(response->mutable_user(),
                                 service_.CreateUser(caller, UserDraft{
                                                                 .username = request->username(),
                                                                 .email = request->email(),
                                                                 .full_name = request->full_name(),
                                                             }));
             });
}

grpc::ServerUnaryReactor* GrpcUserService::GetUser(grpc::CallbackServerContext* context,
                                                   const v1::GetUserRequest* request,
                                                   v1::GetUserResponse* response) {
  return Run(context, Operation::kGetUser, false, [this, request, response](const Caller& caller) {
    return AssignUser(response->mutable_user(), service_.GetUser(caller, request->id()));
  });
}

grpc::ServerUnaryReactor* GrpcUserService::BatchGetUsers(grpc::CallbackServerContext* context,
                                                         const v1::BatchGetUsersRequest* request,
                                                         v1::BatchGetUsersResponse* response) {
  return Run(context, Operation::kBatchGetUsers, false,
             [this, request, response](const Caller& caller) {
               const std::span<const std::int64_t> ids(
                   request->ids().data(), static_cast<std::size_t>(request->ids_size()));
               StatusOr<std::vector<User>> users = service_.BatchGetUsers(caller, ids);
               if (!users.ok()) return users.status();
               response->mutable_users()->Reserve(static_cast<int>(users->size()));
               for (const User& user : *users) ToProto(user, *response->add_users());
               return Status::Ok();
             });
}

grpc::ServerUnaryReactor* GrpcUserService::UpdateUser(grpc::CallbackServerContext* context,
                                                      const v1::UpdateUserRequest* request,
                                                      v1::UpdateUserResponse* response) {
  return Run(context, Operation::kUpdateUser, false,
             [this, request, response](const Caller& caller) {
               UserPatch patch;
               if (request->has_email()) patch.email = request->email();
               if (request->has_full_name()) patch.full_name = request->full_name();
               patch.expected_version = request->expected_version();
               return AssignUser(response->mutable_user(),
                                 service_.UpdateUser(caller, request->id(), patch));
             });
}

grpc::ServerUnaryReactor* GrpcUserService::DeleteUser(grpc::CallbackServerContext* context,
                                                      const v1::DeleteUserRequest* request,
                                                      v1::DeleteUserResponse* /*response*/) {
  return Run(context, Operation::kDeleteUser, false, [this, request](const Caller& caller) {
    return service_.DeleteUser(caller, request->id());
  });
}

grpc::ServerUnaryReactor* GrpcUserService::ListUsers(grpc::CallbackServerContext* context,
                                                     const v1::ListUsersRequest* request,
                                                     v1::ListUsersResponse* response) {
  return Run(
      context, Operation::kListUsers, false, [this, request, response](const Caller& caller) {
        StatusOr<UserPage> page = service_.ListUsers(caller, request->after_id(), request->limit());
        if (!page.ok()) return page.status();
        response->mutable_users()->Reserve(static_cast<int>(page->users.size()));
        for (const User& user : page->users) ToProto(user, *response->add_users());
        response->set_next_after_id(page->next_after_id);
        return Status::Ok();
      });
}

grpc::ServerUnaryReactor* GrpcUserService::SearchUsers(grpc::CallbackServerContext* context,
                                                       const v1::SearchUsersRequest* request,
                                                       v1::SearchUsersResponse* response) {
  return Run(context, Operation::kSearchUsers, false,
             [this, request, response](const Caller& caller) {
               StatusOr<std::vector<User>> users =
                   service_.SearchUsers(caller, request->prefix(), request->limit());
               if (!users.ok()) return users.status();
               response->mutable_users()->Reserve(static_cast<int>(users->size()));
               for (const User& user : *users) ToProto(user, *response->add_users());
               return Status::Ok();
             });
}

}  // namespace polycrud::grpc_adapter
