#include "adapters/thrift/thrift_user_handler.h"

#include <spdlog/spdlog.h>
#include <thrift/TApplicationException.h>

#include <exception>
#include <utility>

namespace polycrud::thrift_adapter {
namespace {

using ::apache::thrift::TApplicationException;
using ::apache::thrift::TException;

// Runs one handler body: IDL exceptions pass, anything else is logged and
// replaced by a generic internal error so no detail reaches the client.
template <typename Fn>
void Guarded(const char* method, Fn&& fn) {
  try {
    std::forward<Fn>(fn)();
  } catch (const TException&) {
    throw;
  } catch (const std::exception& e) {
    spdlog::error("thrift {}: unexpected exception: {}", method, e.what());
    throw TApplicationException(TApplicationException::INTERNAL_ERROR, "internal error");
  }
}

template <typename T>
T Unwrap(StatusOr<T> result) {
  if (!result.ok()) ThrowStatus(result.status());
  return std::move(*result);
}

}  // namespace

void ThrowStatus(const Status& status) {
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
      spdlog::warn("thrift: {}", status.ToString());
      throw e;
    }
    case StatusCode::kUnavailable: {
      gen::Unavailable e;
      e.message = "service unavailable, retry later";
      e.retry_after_ms = status.retry_after_ms();
      spdlog::warn("thrift: {}", status.ToString());
      throw e;
    }
    case StatusCode::kInternal:
      spdlog::error("thrift: {}", status.ToString());
      throw TApplicationException(TApplicationException::INTERNAL_ERROR, "internal error");
    case StatusCode::kOk:
      break;
  }
  spdlog::error("thrift: OK status passed to ThrowStatus");
  throw TApplicationException(TApplicationException::INTERNAL_ERROR, "internal error");
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

void ThriftUserHandler::ping(std::string& out) { out = service_.Ping(); }

void ThriftUserHandler::createUser(gen::User& out, const std::string& token,
                                   const gen::UserDraft& draft) {
  Guarded("createUser", [&] {
    out = ToThrift(Unwrap(service_.CreateUser(token, UserDraft{.username = draft.username,
                                                               .email = draft.email,
                                                               .full_name = draft.full_name})));
  });
}

void ThriftUserHandler::getUser(gen::User& out, const std::string& token, std::int64_t id) {
  Guarded("getUser", [&] { out = ToThrift(Unwrap(service_.GetUser(token, id))); });
}

void ThriftUserHandler::batchGetUsers(std::vector<gen::User>& out, const std::string& token,
                                      const std::vector<std::int64_t>& ids) {
  Guarded("batchGetUsers", [&] {
    std::vector<User> users = Unwrap(service_.BatchGetUsers(token, ids));
    out.clear();
    out.reserve(users.size());
    for (const User& user : users) out.push_back(ToThrift(user));
  });
}

void ThriftUserHandler::updateUser(gen::User& out, const std::string& token, std::int64_t id,
                                   const gen::UserPatch& patch) {
  Guarded("updateUser", [&] {
    UserPatch core_patch;
    if (patch.__isset.email) core_patch.email = patch.email;
    if (patch.__isset.full_name) core_patch.full_name = patch.full_name;
    core_patch.expected_version = patch.expected_version;
    out = ToThrift(Unwrap(service_.UpdateUser(token, id, core_patch)));
  });
}

void ThriftUserHandler::deleteUser(const std::string& token, std::int64_t id) {
  Guarded("deleteUser", [&] {
    if (Status s = service_.DeleteUser(token, id); !s.ok()) ThrowStatus(s);
  });
}

void ThriftUserHandler::listUsers(gen::UserPage& out, const std::string& token,
                                  std::int64_t after_id, std::int32_t limit) {
  Guarded("listUsers", [&] {
    UserPage page = Unwrap(service_.ListUsers(token, after_id, limit));
    out.users.clear();
    out.users.reserve(page.users.size());
    for (const User& user : page.users) out.users.push_back(ToThrift(user));
    out.next_after_id = page.next_after_id;
  });
}

}  // namespace polycrud::thrift_adapter
