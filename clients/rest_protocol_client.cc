// ProtocolClient over HTTP/JSON with Boost.Beast's synchronous client (one
// keep-alive connection). HTTP statuses (and the problem document's `code`
// and `field`) are mapped back to core codes; HTTP cannot tell conflict
// kinds apart, so they come back as ConflictKind::kNone. Routes may carry a
// prefix: the web gateway serves the same ones under /api/v1/.
#include <boost/system/system_error.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "clients/http_connection.h"
#include "clients/protocol_client.h"
#include "clients/protocol_clients.h"

namespace polycrud::clients {
namespace {

using nlohmann::json;

User FromJson(const json& j) {
  return User{.id = j.at("id").get<std::int64_t>(),
              .username = j.at("username").get<std::string>(),
              .email = j.at("email").get<std::string>(),
              .full_name = j.at("full_name").get<std::string>(),
              .version = j.at("version").get<std::int64_t>(),
              .created_at_ms = j.at("created_at_ms").get<std::int64_t>(),
              .updated_at_ms = j.at("updated_at_ms").get<std::int64_t>()};
}

std::vector<User> UsersFromJson(const json& j) {
  std::vector<User> users;
  for (const json& u : j) users.push_back(FromJson(u));
  return users;
}

StatusCode CodeForHttpStatus(unsigned status) {
  switch (status) {
    case 400:
      return StatusCode::kInvalidArgument;
    case 401:
      return StatusCode::kUnauthenticated;
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kNotFound;
    case 409:
      return StatusCode::kConflict;
    case 429:
      return StatusCode::kResourceExhausted;
    case 503:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInternal;
  }
}

// The core code of a problem document's `code`, if it names one.
std::optional<StatusCode> CodeByName(const std::string& name) {
  for (int c = 1; c <= static_cast<int>(StatusCode::kInternal); ++c) {
    if (StatusCodeName(static_cast<StatusCode>(c)) == name) return static_cast<StatusCode>(c);
  }
  return std::nullopt;
}

class RestProtocolClient final : public ProtocolClient {
 public:
  RestProtocolClient(const ClientOptions& options, std::string name)
      : name_(std::move(name)),
        prefix_(options.rest_prefix),
        connection_(options.host, options.port, options.timeout_ms) {}
  std::string_view protocol() const override { return name_; }

  Outcome<std::string> Ping() override {
    return Call<std::string>(
        http::verb::get, prefix_ + "/v1/ping", std::nullopt, "", 200,
        [](const HttpResponse&, const json& j) { return j.at("server").get<std::string>(); });
  }
  Outcome<User> CreateUser(const std::string& token, const UserDraft& draft) override {
    const json body = {
        {"username", draft.username}, {"email", draft.email}, {"full_name", draft.full_name}};
    return Call<User>(http::verb::post, prefix_ + "/v1/users", body.dump(), token, 201,
                      UserWithETag);
  }
  Outcome<User> GetUser(const std::string& token, std::int64_t id) override {
    return Call<User>(http::verb::get, prefix_ + "/v1/users/" + std::to_string(id), std::nullopt,
                      token, 200, UserWithETag);
  }
  Outcome<std::vector<User>> BatchGetUsers(const std::string& token,
                                           const std::vector<std::int64_t>& ids) override {
    const json body = {{"ids", ids}};
    return Call<std::vector<User>>(
        http::verb::post, prefix_ + "/v1/users:batchGet", body.dump(), token, 200,
        [](const HttpResponse&, const json& j) { return UsersFromJson(j.at("users")); });
  }
  Outcome<User> UpdateUser(const std::string& token, std::int64_t id,
                           const UserPatch& patch) override {
    json body = json::object();
    if (patch.email) body["email"] = *patch.email;
    if (patch.full_name) body["full_name"] = *patch.full_name;
    HttpRequest request{http::verb::patch, prefix_ + "/v1/users/" + std::to_string(id), 11};
    request.set(http::field::content_type, "application/json");
    if (!token.empty()) request.set(http::field::authorization, "Bearer " + token);
    if (patch.expected_version != 0) {
      request.set(http::field::if_match, "\"" + std::to_string(patch.expected_version) + "\"");
    }
    request.body() = body.dump();
    return Exchange<User>(std::move(request), 200, UserWithETag);
  }
  Outcome<Empty> DeleteUser(const std::string& token, std::int64_t id) override {
    return Call<Empty>(http::verb::delete_, prefix_ + "/v1/users/" + std::to_string(id),
                       std::nullopt, token, 204,
                       [](const HttpResponse&, const json&) { return Empty{}; });
  }
  Outcome<UserPage> ListUsers(const std::string& token, std::int64_t after_id,
                              std::int32_t limit) override {
    std::string target = prefix_ + "/v1/users?after_id=" + std::to_string(after_id);
    if (limit != 0) target += "&limit=" + std::to_string(limit);
    return Call<UserPage>(
        http::verb::get, target, std::nullopt, token, 200, [](const HttpResponse&, const json& j) {
          return UserPage{.users = UsersFromJson(j.at("users")),
                          .next_after_id = j.at("next_after_id").get<std::int64_t>()};
        });
  }

 private:
  // A user whose ETag must be its quoted version.
  static User UserWithETag(const HttpResponse& response, const json& j) {
    User user = FromJson(j);
    const std::string etag(response[http::field::etag]);
    if (etag != "\"" + std::to_string(user.version) + "\"") {
      throw std::runtime_error("ETag " + etag + " does not match version " +
                               std::to_string(user.version));
    }
    return user;
  }

  template <typename T, typename Decode>
  Outcome<T> Call(http::verb method, const std::string& target,
                  const std::optional<std::string>& body, const std::string& token,
                  unsigned success, Decode decode) {
    HttpRequest request{method, target, 11};
    if (body) {
      request.set(http::field::content_type, "application/json");
      request.body() = *body;
    }
    if (!token.empty()) request.set(http::field::authorization, "Bearer " + token);
    return Exchange<T>(std::move(request), success, decode);
  }

  // Sends one request; a `success` status is decoded, anything else mapped
  // back to a core code. Transport or decoding failures count as kInternal.
  template <typename T, typename Decode>
  Outcome<T> Exchange(HttpRequest request, unsigned success, Decode decode) {
    Outcome<T> out;
    try {
      const HttpResponse response = connection_.Send(std::move(request));
      const unsigned status = response.result_int();
      const json body = response.body().empty()
                            ? json()
                            : json::parse(response.body(), nullptr, /*allow_exceptions=*/false);
      if (status == success) {
        out.value = decode(response, body);
        return out;
      }
      out.status.code = CodeForHttpStatus(status);
      out.status.message = "HTTP " + std::to_string(status) + ": " + response.body();
      if (body.is_object()) {
        if (auto it = body.find("code"); it != body.end() && it->is_string()) {
          std::optional<StatusCode> named = CodeByName(it->get<std::string>());
          if (named && *named != out.status.code) {
            out.status.code = StatusCode::kInternal;
            out.status.message =
                "status " + std::to_string(status) + " but code " + it->get<std::string>();
          }
        }
        if (auto it = body.find("field"); it != body.end() && it->is_string()) {
          out.status.field = it->get<std::string>();
        }
      }
      if (out.status.code == StatusCode::kInternal && status < 500) {
        out.status.message += " (unexpected status)";
      }
    } catch (const boost::system::system_error& e) {
      // Connect, write or read failed; the connection reopens on the next call.
      out.value.reset();
      out.status = {StatusCode::kInternal, ConflictKind::kNone, "", e.what(), true};
    } catch (const std::exception& e) {
      // An answer that does not decode as the contract says.
      out.value.reset();
      out.status = {StatusCode::kInternal, ConflictKind::kNone, "", e.what()};
    }
    return out;
  }

  std::string name_;
  std::string prefix_;
  HttpConnection connection_;
};

}  // namespace

std::unique_ptr<ProtocolClient> MakeRestProtocolClient(const ClientOptions& options,
                                                       std::string name) {
  return std::make_unique<RestProtocolClient>(options, std::move(name));
}

}  // namespace polycrud::clients
