// ProtocolClient over HTTP/JSON with Boost.Beast's synchronous client (one
// keep-alive connection). HTTP statuses (and the problem document's `code`
// and `field`) are mapped back to core codes; HTTP cannot tell conflict
// kinds apart, so they come back as ConflictKind::kNone. Routes may carry a
// prefix: the web gateway serves the same ones under /api/v1/.
#include <array>
#include <boost/system/system_error.hpp>
#include <cctype>
#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "clients/http_connection.h"
#include "clients/json_user_convert.h"
#include "clients/protocol_client.h"
#include "clients/protocol_clients.h"

namespace polycrud::clients {
namespace {

using nlohmann::json;

// The body of a request without one.
const std::optional<std::string> kNoBody;

template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

// Reads the members of one JSON object without building a document: each
// top-level member that is an integer or a string goes to member(key,
// value), a std::int64_t or a std::string&; nested values are skipped. The
// answers of ping and of the single-user calls are decoded this way, the
// rest (lists, problem documents) through a json document.
template <typename Member>
class TopLevelMembers final : public nlohmann::json_sax<json> {
 public:
  explicit TopLevelMembers(Member member) : member_(std::move(member)) {}

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t value) override {
    if (depth_ == 1) member_(key_, static_cast<std::int64_t>(value));
    return true;
  }
  bool number_unsigned(number_unsigned_t value) override {
    if (depth_ != 1) return true;
    if (value > static_cast<number_unsigned_t>(std::numeric_limits<std::int64_t>::max())) {
      throw std::runtime_error("member " + key_ + " out of range");
    }
    member_(key_, static_cast<std::int64_t>(value));
    return true;
  }
  bool number_float(number_float_t, const string_t&) override {
    if (depth_ == 1) throw std::runtime_error("member " + key_ + " is not an integer");
    return true;
  }
  bool string(string_t& value) override {
    if (depth_ == 1) member_(key_, value);
    return true;
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    if (depth_ == 0 && seen_object_) return false;
    seen_object_ = true;
    ++depth_;
    return true;
  }
  bool key(string_t& key) override {
    if (depth_ == 1) key_.assign(key);
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 0) return false;  // not an object
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    throw std::runtime_error("malformed JSON answer at byte " + std::to_string(position));
  }

 private:
  Member member_;
  std::string key_;
  int depth_ = 0;
  bool seen_object_ = false;
};

// Parses `body`, a JSON object, handing its top-level members to `member`.
template <typename Member>
void ForEachMember(std::string_view body, Member member) {
  TopLevelMembers<Member> sax(std::move(member));
  if (!json::sax_parse(body.begin(), body.end(), &sax)) {
    throw std::runtime_error("the answer is not a JSON object");
  }
}

// A user from its JSON object; throws std::runtime_error when a member is
// missing or of the wrong type.
User UserFromBody(std::string_view body) {
  constexpr std::array<std::pair<std::string_view, std::int64_t User::*>, 4> kIntegers = {{
      {"id", &User::id},
      {"version", &User::version},
      {"created_at_ms", &User::created_at_ms},
      {"updated_at_ms", &User::updated_at_ms},
  }};
  constexpr std::array<std::pair<std::string_view, std::string User::*>, 3> kStrings = {{
      {"username", &User::username},
      {"email", &User::email},
      {"full_name", &User::full_name},
  }};
  User user;
  unsigned seen = 0;  // bit i: member i of kIntegers then kStrings
  bool wrong_type = false;
  auto integer = [&](std::string_view key, std::int64_t value) {
    for (std::size_t i = 0; i < kIntegers.size(); ++i) {
      if (key == kIntegers[i].first) {
        user.*kIntegers[i].second = value;
        seen |= 1u << i;
      }
    }
    for (const auto& [name, field] : kStrings) wrong_type |= key == name;
  };
  auto text = [&](std::string_view key, std::string& value) {
    for (std::size_t i = 0; i < kStrings.size(); ++i) {
      if (key == kStrings[i].first) {
        user.*kStrings[i].second = std::move(value);
        seen |= 1u << (kIntegers.size() + i);
      }
    }
    for (const auto& [name, field] : kIntegers) wrong_type |= key == name;
  };
  ForEachMember(body, Overloaded{integer, text});
  if (wrong_type || seen != (1u << (kIntegers.size() + kStrings.size())) - 1) {
    throw std::runtime_error("not a user: " + std::string(body));
  }
  return user;
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
        connection_(options.host, options.port, options.timeout_ms, options.tls) {}
  std::string_view protocol() const override { return name_; }

  Outcome<std::string> Ping() override {
    return Call<std::string>(
        http::verb::get, prefix_ + "/v1/ping", kNoBody, "", 200, [](const HttpResponse& response) {
          std::string server;
          bool found = false;
          auto text = [&](std::string_view key, std::string& value) {
            if (key == "server") {
              server = std::move(value);
              found = true;
            }
          };
          ForEachMember(response.body(), Overloaded{text, [](std::string_view, std::int64_t) {}});
          if (!found) throw std::runtime_error("no server in " + response.body());
          return server;
        });
  }
  Outcome<User> CreateUser(const std::string& token, const UserDraft& draft) override {
    const json body = {
        {"username", draft.username}, {"email", draft.email}, {"full_name", draft.full_name}};
    return Call<User>(http::verb::post, prefix_ + "/v1/users", body.dump(), token, 201,
                      UserWithETag);
  }
  Outcome<User> GetUser(const std::string& token, std::int64_t id) override {
    return Call<User>(http::verb::get, prefix_ + "/v1/users/" + std::to_string(id), kNoBody, token,
                      200, UserWithETag);
  }
  Outcome<std::vector<User>> BatchGetUsers(const std::string& token,
                                           const std::vector<std::int64_t>& ids) override {
    const json body = {{"ids", ids}};
    return Call<std::vector<User>>(
        http::verb::post, prefix_ + "/v1/users:batchGet", body.dump(), token, 200,
        [](const HttpResponse& response) { return UsersFromJson(Document(response).at("users")); });
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
    return Call<Empty>(http::verb::delete_, prefix_ + "/v1/users/" + std::to_string(id), kNoBody,
                       token, 204, [](const HttpResponse&) { return Empty{}; });
  }
  Outcome<std::vector<User>> SearchUsers(const std::string& token, const std::string& prefix,
                                         std::int32_t limit) override {
    std::string target = prefix_ + "/v1/users/search?prefix=" + PercentEncode(prefix);
    if (limit != 0) target += "&limit=" + std::to_string(limit);
    return Call<std::vector<User>>(
        http::verb::get, target, kNoBody, token, 200,
        [](const HttpResponse& response) { return UsersFromJson(Document(response).at("users")); });
  }
  Outcome<UserPage> ListUsers(const std::string& token, std::int64_t after_id,
                              std::int32_t limit) override {
    std::string target = prefix_ + "/v1/users?after_id=" + std::to_string(after_id);
    if (limit != 0) target += "&limit=" + std::to_string(limit);
    return Call<UserPage>(
        http::verb::get, target, kNoBody, token, 200, [](const HttpResponse& response) {
          const json j = Document(response);
          return UserPage{.users = UsersFromJson(j.at("users")),
                          .next_after_id = j.at("next_after_id").get<std::int64_t>()};
        });
  }

 private:
  // `text` as a query component: RFC 3986 unreserved bytes as they are,
  // every other byte as %XX.
  static std::string PercentEncode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : text) {
      const auto byte = static_cast<unsigned char>(c);
      if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
        out += c;
      } else {
        out += '%';
        out += kHex[byte >> 4];
        out += kHex[byte & 0x0F];
      }
    }
    return out;
  }

  // The body as a json document (discarded if it is not JSON).
  static json Document(const HttpResponse& response) {
    return json::parse(response.body(), nullptr, /*allow_exceptions=*/false);
  }

  // A user whose ETag must be its quoted version.
  static User UserWithETag(const HttpResponse& response) {
    User user = UserFromBody(response.body());
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
      if (status == success) {
        out.value.emplace(decode(response));
        return out;
      }
      const json body = response.body().empty()
                            ? json()
                            : json::parse(response.body(), nullptr, /*allow_exceptions=*/false);
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
