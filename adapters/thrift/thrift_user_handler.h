// ThriftUserHandler: the Thrift face of UserService. It only translates
// between the generated types of idl/polycrud.thrift and the core, and maps
// core errors to the IDL's exceptions (API.md, Error model). Only
// IDL-declared exceptions leave it; anything else becomes a generic
// TApplicationException, logged with its detail, never sent. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "UserService.h"
#include "core/metrics.h"
#include "core/status.h"
#include "core/user_service.h"

namespace polycrud::thrift_adapter {

namespace gen = ::polycrud::thrift;

// Throws the IDL exception for a non-OK status (exhaustive over StatusCode);
// logged lines carry `request_id`.
[[noreturn]] void ThrowStatus(const Status& status, std::string_view request_id = {});

gen::User ToThrift(const User& user);
// Stores the converted user in `out` when `user` holds one; returns its status.
Status Assign(gen::User& out, const StatusOr<User>& user);

class ThriftUserHandler final : public gen::UserServiceIf {
 public:
  ThriftUserHandler(UserService& service, Metrics& metrics)
      : service_(service), metrics_(metrics) {}

  // gen::UserServiceIf:
  void ping(std::string& out) override;
  void createUser(gen::User& out, const std::string& token, const gen::UserDraft& draft) override;
  void getUser(gen::User& out, const std::string& token, std::int64_t id) override;
  void batchGetUsers(std::vector<gen::User>& out, const std::string& token,
                     const std::vector<std::int64_t>& ids) override;
  void updateUser(gen::User& out, const std::string& token, std::int64_t id,
                  const gen::UserPatch& patch) override;
  void deleteUser(const std::string& token, std::int64_t id) override;
  void listUsers(gen::UserPage& out, const std::string& token, std::int64_t after_id,
                 std::int32_t limit) override;
  void searchUsers(std::vector<gen::User>& out, const std::string& token, const std::string& prefix,
                   std::int32_t limit) override;

 private:
  // Runs `fn(request_id)` under the operation's metrics with a new request id.
  template <typename Fn>
  void Run(Operation operation, Fn&& fn);

  UserService& service_;
  Metrics& metrics_;
};

}  // namespace polycrud::thrift_adapter
