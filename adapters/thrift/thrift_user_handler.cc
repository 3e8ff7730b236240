#include "adapters/thrift/thrift_user_handler.h"

#include <spdlog/spdlog.h>
#include <thrift/TApplicationException.h>

#include <exception>
#include <utility>

namespace polycrud::thrift_adapter {
using ::apache::thrift::TApplicationException;

// Runs one handler body, which returns the core status: counts it, maps an
// error to its IDL exception, and turns anything unexpected into a generic
// internal error so no detail reaches the client.
// Thrift's framed binary protocol has no place for a request id, so each
// call gets a new one: it names the call in every log line, on the server
// only.
template <typename Fn>
void ThriftUserHandler::Run(Operation operation, Fn&& fn) {
  ScopedCall call(metrics_, Protocol::kThrift, operation);
  // Ping logs nothing and is the baseline of every benchmark: it needs none.
  const std::string request_id = operation == Operation::kPing ? std::string() : NewRequestId();
  Status status;
  try {
    status = std::forward<Fn>(fn)(std::string_view(request_id));
  } catch (const std::exception& e) {
    spdlog::error("thrift {} [{}]: unexpected exception: {}", OperationName(operation), request_id,
                  e.what());
    status = Status::Internal(e.what());
  }
  call.Done(status.code());
  if (!status.ok()) ThrowStatus(status, request_id);
}

void ThrowStatus(const Status& status, std::string_view request_id) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument: {
      gen::InvalidArgument e;
      e.message = status.message();
      e.field = status.field();
      throw e;
    }
    case StatusCode::kUnauthenticated: {
      gen::Unauthenticated e;
      e.message = status.message();
      throw e;
    }
    case StatusCode::kPermissionDenied: {
      gen::PermissionDenied e;
      e.message = status.message();
      throw e;
    }
    case StatusCode::kNotFound: {
      gen::NotFound e;
      e.message = status.message();
      throw e;
    }
    case StatusCode::kConflict: {
      gen::Conflict e;
      e.message = status.message();
      throw e;
    }
    case StatusCode::kResourceExhausted: {
      gen::Unavailable e;
      e.message = "overloaded, retry later";
      e.retry_after_ms = status.retry_after_ms();
      spdlog::warn("thrift [{}]: {}", request_id, status.ToString());
      throw e;
    }
    case StatusCode::kUnavailable: {
      gen::Unavailable e;
      e.message = "service unavailable, retry later";
      e.retry_after_ms = status.retry_after_ms();
      spdlog::warn("thrift [{}]: {}", request_id, status.ToString());
      throw e;
    }
    case StatusCode::kInternal:
      spdlog::error("thrift [{}]: {}", request_id, status.ToString());
      throw TApplicationException(TApplicationException::INTERNAL_ERROR, "internal error");
    case StatusCode::kOk:
      break;
  }
  spdlog::error("thrift [{}]: OK status passed to ThrowStatus", request_id);
  throw TApplicationException(TApplicationException::INTERNAL_ERROR, "internal error");
}

Status Assign(gen::User& out, const StatusOr<User>& user) {
  if (!user.ok()) return user.status();
  out = ToThrift(*user);
  return Status::Ok();
}

gen::User ToThrift(const User& user) {
  gen::User out;
  out.id = user.id;
  out.username = user.username;
  out.email = user.email;
  out.full_name = user.full_name;
  out.version = user.version;
  out.created_at_ms = user.created_at_ms;
  out.updated_at_ms = user.updated_at_ms;
  return out;
}

void ThriftUserHandler::ping(std::string& out) {
  Run(Operation::kPing, [&](std::string_view /*request_id*/) {
    out = service_.Ping();
    return Status::Ok();
  });
}

void ThriftUserHandler::createUser(gen::User& out, const std::string& token,
                                   const gen::UserDraft& draft) {
  Run(Operation::kCreateUser, [&](std::string_view request_id) {
    return Assign(out, service_.CreateUser(Caller(token, request_id),
                                           UserDraft{.username = draft.username,
                                                     .email = draft.email,
                                                     .full_name = draft.full_name}));
  });
}

void ThriftUserHandler::getUser(gen::User& out, const std::string& token, std::int64_t id) {
  Run(Operation::kGetUser, [&](std::string_view request_id) {
    return Assign(out, service_.GetUser(Caller(token, request_id), id));
  });
}

void ThriftUserHandler::batchGetUsers(std::vector<gen::User>& out, const std::string& token,
                                      const std::vector<std::int64_t>& ids) {
  Run(Operation::kBatchGetUsers, [&](std::string_view request_id) {
    StatusOr<std::vector<User>> users = service_.BatchGetUsers(Caller(token, request_id), ids);
    if (!users.ok()) return users.status();
    out.clear();
    out.reserve(users->size());
    for (const User& user : *users) out.push_back(ToThrift(user));
    return Status::Ok();
  });
}

void ThriftUserHandler::searchUsers(std::vector<gen::User>& out, const std::string& token,
                                    const std::string& prefix, std::int32_t limit) {
  Run(Operation::kSearchUsers, [&](std::string_view request_id) {
    StatusOr<std::vector<User>> users =
        service_.SearchUsers(Caller(token, request_id), prefix, limit);
    if (!users.ok()) return users.status();
    out.clear();
    out.reserve(users->size());
    for (const User& user : *users) out.push_back(ToThrift(user));
    return Status::Ok();
  });
}

void ThriftUserHandler::updateUser(gen::User& out, const std::string& token, std::int64_t id,
                                   const gen::UserPatch& patch) {
  Run(Operation::kUpdateUser, [&](std::string_view request_id) {
    UserPatch core_patch;
    if (patch.__isset.email) core_patch.email = patch.email;
    if (patch.__isset.full_name) core_patch.full_name = patch.full_name;
    core_patch.expected_version = patch.expected_version;
    return Assign(out, service_.UpdateUser(Caller(token, request_id), id, core_patch));
  });
}

void ThriftUserHandler::deleteUser(const std::string& token, std::int64_t id) {
  Run(Operation::kDeleteUser, [&](std::string_view request_id) {
    return service_.DeleteUser(Caller(token, request_id), id);
  });
}

void ThriftUserHandler::listUsers(gen::UserPage& out, const std::string& token,
                                  std::int64_t after_id, std::int32_t limit) {
  Run(Operation::kListUsers, [&](std::string_view request_id) {
    StatusOr<UserPage> page = service_.ListUsers(Caller(token, request_id), after_id, limit);
    if (!page.ok()) return page.status();
    out.users.clear();
    out.users.reserve(page->users.size());
    for (const User& user : page->users) out.users.push_back(ToThrift(user));
    out.next_after_id = page->next_after_id;
    return Status::Ok();
  });
}

}  // namespace polycrud::thrift_adapter
