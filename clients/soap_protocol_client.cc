// ProtocolClient over the gSOAP client proxy generated from wsdl/polycrud.wsdl.
// The token travels as "Authorization: Bearer <token>"; faults map back to
// core codes through <detail><code> (and <field>). SOAP has one fault for
// both kinds of conflict, so ConflictKind stays kNone. The proxy keeps its
// connection alive (SOAP_IO_KEEPALIVE) and opens a new one when the server
// closed it, as it does after every fault (Connection: close).
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "clients/protocol_client.h"
#include "clients/protocol_clients.h"
#include "clients/soap_user_convert.h"
#include "runtime/io_wait.h"
#include "soapUserServiceBindingProxy.h"

namespace polycrud::clients {
namespace {

using runtime::IoClock;
using runtime::RecvSome;
using runtime::SendAll;

// The core code whose name is `name`, or kInternal for an unknown name.
StatusCode CodeFromName(const std::string& name) {
  constexpr std::array kCodes = {
      StatusCode::kInvalidArgument, StatusCode::kUnauthenticated, StatusCode::kPermissionDenied,
      StatusCode::kNotFound,        StatusCode::kConflict,        StatusCode::kResourceExhausted,
      StatusCode::kUnavailable,     StatusCode::kInternal,
  };
  for (const StatusCode code : kCodes) {
    if (StatusCodeName(code) == name) return code;
  }
  return StatusCode::kInternal;
}

// The deadline of one send or receive: gSOAP's timeouts are seconds when
// positive, microseconds when negative, none when 0.
IoClock::time_point DeadlineOf(int timeout) {
  if (timeout == 0) return IoClock::time_point::max();
  const auto limit = timeout > 0 ? std::chrono::microseconds(std::int64_t{timeout} * 1'000'000)
                                 : std::chrono::microseconds(-std::int64_t{timeout});
  return IoClock::now() + limit;
}

// false, with soap->errnum set (0 for a timeout), when `ec` is an error.
bool Succeeded(struct soap* soap, const std::error_code& ec) {
  if (!ec) return true;
  soap->errnum = ec == std::errc::timed_out ? 0 : ec.value();
  return false;
}

// soap->fsend: sends at once and waits (runtime::SendAll) only when the
// socket buffer is full. gSOAP's own fsend waits in select() before every
// send when a send timeout is set, a system call per message for nothing,
// and blocks the thread.
int SendRequest(struct soap* soap, const char* data, std::size_t size) {
  if (!Succeeded(soap, SendAll(soap->socket, data, size, DeadlineOf(soap->send_timeout)))) {
    return SOAP_EOF;
  }
  *static_cast<bool*>(soap->user) = true;  // sent since the last receive
  return SOAP_OK;
}

// soap->frecv: reads what has arrived, waiting (runtime::RecvSome) only when
// nothing has, and before the first read after a request. 0 is end of
// stream, a failure or a timeout.
std::size_t ReceiveAnswer(struct soap* soap, char* buffer, std::size_t size) {
  std::size_t received = 0;
  const bool wait_first = std::exchange(*static_cast<bool*>(soap->user), false);
  if (!Succeeded(soap, RecvSome(soap->socket, buffer, size, DeadlineOf(soap->recv_timeout),
                                wait_first, received))) {
    return 0;
  }
  return received;
}

// soap->fpoll, asked before each request whether the kept-alive connection
// still holds: one non-blocking peek. gSOAP's own soap_poll select()s the
// socket first. Nothing to read means it holds; an end of stream (the
// server closed it), an error, or bytes nobody asked for (a late answer
// that must not be read as the next call's) make gSOAP connect anew.
int ConnectionUsable(struct soap* soap) {
  if (!soap_valid_socket(soap->socket)) return SOAP_OK;  // connects anyway
  char byte;
  const ssize_t peeked = ::recv(soap->socket, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return SOAP_OK;
  return SOAP_EOF;
}

class SoapProtocolClient final : public ProtocolClient {
 public:
  explicit SoapProtocolClient(const ClientOptions& options)
      : endpoint_("http://" + options.host + ":" + std::to_string(options.port) + "/soap"),
        proxy_(endpoint_.c_str(), SOAP_IO_KEEPALIVE | SOAP_C_UTFSTRING) {
    soap_set_namespaces(proxy_.soap, namespaces);  // the table of polycrud::soap_gen
    // Build each request once in memory and send it with its Content-Length
    // (the default serialises it twice: once to count its length).
    soap_clr_omode(proxy_.soap, SOAP_IO);
    soap_set_omode(proxy_.soap, SOAP_IO_STORE);
    proxy_.soap->fsend = SendRequest;
    proxy_.soap->frecv = ReceiveAnswer;
    proxy_.soap->fpoll = ConnectionUsable;
    proxy_.soap->user = &sent_;
    // Positive values are seconds, negative ones microseconds.
    const int timeout_us = -1000 * options.timeout_ms;
    proxy_.soap->connect_timeout = timeout_us;
    proxy_.soap->recv_timeout = timeout_us;
    proxy_.soap->send_timeout = timeout_us;
    proxy_.soap->socket_flags = MSG_NOSIGNAL;
  }
  ~SoapProtocolClient() override { proxy_.destroy(); }
  std::string_view protocol() const override { return "soap"; }

  Outcome<std::string> Ping() override {
    return Call<std::string>("", [&] {
      _pc__Ping request;
      _pc__PingResponse response;
      return std::make_pair(proxy_.Ping(&request, response), response.server);
    });
  }
  Outcome<User> CreateUser(const std::string& token, const UserDraft& draft) override {
    return Call<User>(token, [&] {
      _pc__CreateUser request;
      request.username = draft.username;
      request.email = draft.email;
      request.full_USCOREname = draft.full_name;
      _pc__CreateUserResponse response;
      const int error = proxy_.CreateUser(&request, response);
      return std::make_pair(error, response.user ? FromSoap(*response.user) : User{});
    });
  }
  Outcome<User> GetUser(const std::string& token, std::int64_t id) override {
    return Call<User>(token, [&] {
      _pc__GetUser request;
      request.id = id;
      _pc__GetUserResponse response;
      const int error = proxy_.GetUser(&request, response);
      return std::make_pair(error, response.user ? FromSoap(*response.user) : User{});
    });
  }
  Outcome<std::vector<User>> BatchGetUsers(const std::string& token,
                                           const std::vector<std::int64_t>& ids) override {
    return Call<std::vector<User>>(token, [&] {
      _pc__BatchGetUsers request;
      request.ids.assign(ids.begin(), ids.end());
      _pc__BatchGetUsersResponse response;
      const int error = proxy_.BatchGetUsers(&request, response);
      std::vector<User> users;
      for (const pc__User* u : response.users) users.push_back(FromSoap(*u));
      return std::make_pair(error, std::move(users));
    });
  }
  Outcome<User> UpdateUser(const std::string& token, std::int64_t id,
                           const UserPatch& patch) override {
    return Call<User>(token, [&] {
      std::string email = patch.email.value_or("");
      std::string full_name = patch.full_name.value_or("");
      LONG64 expected_version = patch.expected_version;
      _pc__UpdateUser request;
      request.id = id;
      request.email = patch.email ? &email : nullptr;
      request.full_USCOREname = patch.full_name ? &full_name : nullptr;
      request.expected_USCOREversion = &expected_version;
      _pc__UpdateUserResponse response;
      const int error = proxy_.UpdateUser(&request, response);
      return std::make_pair(error, response.user ? FromSoap(*response.user) : User{});
    });
  }
  Outcome<Empty> DeleteUser(const std::string& token, std::int64_t id) override {
    return Call<Empty>(token, [&] {
      _pc__DeleteUser request;
      request.id = id;
      _pc__DeleteUserResponse response;
      return std::make_pair(proxy_.DeleteUser(&request, response), Empty{});
    });
  }
  Outcome<std::vector<User>> SearchUsers(const std::string& token, const std::string& prefix,
                                         std::int32_t limit) override {
    return Call<std::vector<User>>(token, [&] {
      int search_limit = limit;
      _pc__SearchUsers request;
      request.prefix = prefix;
      request.limit = &search_limit;
      _pc__SearchUsersResponse response;
      const int error = proxy_.SearchUsers(&request, response);
      std::vector<User> users;
      for (const pc__User* u : response.users) users.push_back(FromSoap(*u));
      return std::make_pair(error, std::move(users));
    });
  }
  Outcome<UserPage> ListUsers(const std::string& token, std::int64_t after_id,
                              std::int32_t limit) override {
    return Call<UserPage>(token, [&] {
      LONG64 after = after_id;
      int page_limit = limit;
      _pc__ListUsers request;
      request.after_USCOREid = &after;
      request.limit = &page_limit;
      _pc__ListUsersResponse response;
      const int error = proxy_.ListUsers(&request, response);
      UserPage page;
      for (const pc__User* u : response.users) page.users.push_back(FromSoap(*u));
      page.next_after_id = response.next_USCOREafter_USCOREid;
      return std::make_pair(error, std::move(page));
    });
  }

 private:
  // Runs one call (fn returns the gSOAP error and the converted result) with
  // the token set, and maps a fault back to its core code.
  template <typename T, typename Fn>
  Outcome<T> Call(const std::string& token, Fn&& fn) {
    proxy_.soap->bearer = token.empty() ? nullptr : token.c_str();
    Outcome<T> out;
    auto [error, value] = std::forward<Fn>(fn)();
    if (error == SOAP_OK) {
      out.value = std::move(value);
    } else {
      const SOAP_ENV__Detail* detail =
          proxy_.soap->fault != nullptr ? proxy_.soap->fault->detail : nullptr;
      const char* reason = soap_fault_string(proxy_.soap);
      out.status.message = reason != nullptr ? reason : "SOAP error " + std::to_string(error);
      if (detail != nullptr && detail->pc__code != nullptr) {
        out.status.code = CodeFromName(*detail->pc__code);
        if (detail->pc__field != nullptr) out.status.field = *detail->pc__field;
      } else {
        // Not a fault of ours: no answer (connect, send or receive failed or
        // timed out: SOAP_TCP_ERROR, SOAP_EOF) or a malformed one. Either
        // way start over on a new connection, so that a late answer is never
        // read as the next call's.
        out.status.code = StatusCode::kInternal;
        out.status.transport_failure = soap_tcp_error_check(error);
        soap_force_closesock(proxy_.soap);
      }
    }
    proxy_.soap->bearer = nullptr;
    Release();
    return out;
  }

  // Frees what the call deserialised (the answer's objects, the fault) as
  // proxy_.destroy() does, less its soap_end()'s soap_free_temp(), which
  // clears gSOAP's pointer and id hash tables (4096 and 1999 slots): the
  // next call's soap_begin() clears them anyway, and the proxy's destructor
  // at the end. soap_dealloc(soap, nullptr) also resets soap->fault and
  // header.
  void Release() {
    soap_destroy(proxy_.soap);
    soap_dealloc(proxy_.soap, nullptr);
    soap_closesock(proxy_.soap);  // closes only a connection gone bad
  }

  std::string endpoint_;
  bool sent_ = false;  // soap->user: a request was sent since the last receive
  UserServiceBindingProxy proxy_;
};

}  // namespace

std::unique_ptr<ProtocolClient> MakeSoapProtocolClient(const ClientOptions& options) {
  return std::make_unique<SoapProtocolClient>(options);
}

}  // namespace polycrud::clients
