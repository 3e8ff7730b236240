// GrpcUserService: the gRPC face of UserService on gRPC's callback API. It
// only translates between the generated messages of
// proto/polycrud/v1/user_service.proto and the core, and maps core errors to
// canonical gRPC codes (API.md, Error model). The bearer token comes from the
// `authorization: Bearer <token>` metadata entry. Calls that do I/O run on a
// WorkerPool so gRPC's callback threads never block; Ping runs inline.
// Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/metrics.h"
#include "core/status.h"
#include "core/user_service.h"
#include "polycrud/v1/user_service.grpc.pb.h"
#include "runtime/worker_pool.h"

namespace polycrud::grpc_adapter {

namespace v1 = ::polycrud::v1;

// Trailing-metadata keys that carry what a gRPC status cannot.
inline constexpr char kFieldMetadataKey[] = "polycrud-field";
inline constexpr char kRetryAfterMetadataKey[] = "retry-after-ms";
// Metadata that names a call: taken from the client's metadata when usable,
// else made up, and sent back in the initial metadata of every answer.
inline constexpr std::string_view kRequestIdMetadataKey = "x-request-id";

// Maps a core status to its gRPC status (API.md), adding the offending field
// or the retry hint to `context`'s trailing metadata. Internal and
// unavailable details are logged with `request_id`, never sent.
grpc::Status ToGrpcStatus(const Status& status, grpc::ServerContextBase& context,
                          std::string_view request_id = {});

// The request id of the call: its x-request-id metadata if usable
// (AcceptRequestId), else a new one.
std::string RequestIdOf(const grpc::ServerContextBase& context);

// The token of an `authorization: Bearer <token>` entry in `context`'s
// metadata; empty if the entry is missing or malformed (the core then
// answers UNAUTHENTICATED).
std::string BearerToken(const grpc::ServerContextBase& context);

// Core <-> wire.
void ToProto(const User& user, v1::User& out);

class GrpcUserService final : public v1::UserService::CallbackService {
 public:
  // `service`, `metrics` and `workers` must outlive this object.
  GrpcUserService(UserService& service, Metrics& metrics, runtime::WorkerPool& workers);

  // v1::UserService::CallbackService
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context,
                                 const v1::PingRequest* request,
                                 v1::PingResponse* response) override;
  grpc::ServerUnaryReactor* CreateUser(grpc::CallbackServerContext* context,
                                       const v1::CreateUserRequest* request,
                                       v1::CreateUserResponse* response) override;
  grpc::ServerUnaryReactor* GetUser(grpc::CallbackServerContext* context,
                                    const v1::GetUserRequest* request,
                                    v1::GetUserResponse* response) override;
  grpc::ServerUnaryReactor* BatchGetUsers(grpc::CallbackServerContext* context,
                                          const v1::BatchGetUsersRequest* request,
                                          v1::BatchGetUsersResponse* response) override;
  grpc::ServerUnaryReactor* UpdateUser(grpc::CallbackServerContext* context,
                                       const v1::UpdateUserRequest* request,
                                       v1::UpdateUserResponse* response) override;
  grpc::ServerUnaryReactor* DeleteUser(grpc::CallbackServerContext* context,
                                       const v1::DeleteUserRequest* request,
                                       v1::DeleteUserResponse* response) override;
  grpc::ServerUnaryReactor* ListUsers(grpc::CallbackServerContext* context,
                                      const v1::ListUsersRequest* request,
                                      v1::ListUsersResponse* response) override;
  grpc::ServerUnaryReactor* SearchUsers(grpc::CallbackServerContext* context,
                                        const v1::SearchUsersRequest* request,
                                        v1::SearchUsersResponse* response) override;

  // Calls whose handler has started and that gRPC is not done with yet
  // (answer not yet sent). Thread-safe.
  std::int64_t in_flight() const { return in_flight_.load(std::memory_order_acquire); }

 private:
  // Runs `fn(token)` (which returns the core status) for one call: on a
  // worker unless `inline_call`, counted in the metrics, and finishes the
  // call with the mapped status. A call whose deadline has passed or that
  // was cancelled is answered without calling the core.
  template <typename Fn>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context, Operation operation,
                                bool inline_call, Fn fn);

  UserService& service_;
  Metrics& metrics_;
  runtime::WorkerPool& workers_;
  std::atomic<std::int64_t> in_flight_{0};
};

}  // namespace polycrud::grpc_adapter
