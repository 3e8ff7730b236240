// Unit tests of the REST adapter without a network: the routes over
// UserService wired to in-memory fakes, the operational pages, and the
// OpenAPI document against the routes actually served.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>

#include "adapters/rest/rest_ops_pages.h"
#include "adapters/rest/rest_router.h"
#include "adapters/rest/rest_user_routes.h"
#include "openapi/openapi_json.h"
#include "server/prometheus_text.h"
#include "tests/core/user_service_fixture.h"

namespace polycrud::rest_adapter {
namespace {

using nlohmann::json;
using testing::FakeClock;
using testing::kAdminToken;
using testing::kReaderToken;
using testing::MemoryUserCache;
using testing::MemoryUserStore;

class RestRoutesTest : public ::testing::Test {
 protected:
  RestRoutesTest() {
    user_routes_.Register(router_);
    ops_pages_.Register(router_);
  }

  HttpResponse Send(http::verb method, const std::string& target,
                    const std::optional<std::string>& body = std::nullopt,
                    std::string_view token = kAdminToken,
                    std::vector<std::pair<http::field, std::string>> headers = {}) {
    HttpRequest request{method, target, 11};
    if (body) {
      request.set(http::field::content_type, "application/json");
      request.body() = *body;
    }
    if (!token.empty()) request.set(http::field::authorization, "Bearer " + std::string(token));
    for (auto& [field, value] : headers) request.set(field, value);
    request.prepare_payload();
    return router_.Dispatch(request);
  }

  // Creates a user and returns its JSON.
  json Create(const std::string& name) {
    HttpResponse r =
        Send(http::verb::post, "/v1/users",
             json{{"username", name}, {"email", name + "@example.com"}, {"full_name", "Full Name"}}
                 .dump());
    EXPECT_EQ(r.result_int(), 201u) << r.body();
    return json::parse(r.body());
  }

  static json Body(const HttpResponse& r) { return json::parse(r.body()); }

  MemoryUserStore store_;
  MemoryUserCache cache_;
  Sha256TokenVerifier tokens_ = testing::MakeTokenVerifier();
  FakeClock clock_;
  UserService service_{store_, cache_, tokens_, clock_};
  Metrics metrics_;
  RestRouter router_;
  RestUserRoutes user_routes_{service_, metrics_};
  RestOpsPages ops_pages_{service_, [this] {
                            return server::RenderPrometheusText(metrics_, service_.cache_stats(),
                                                                service_.cache_breaker_state(),
                                                                server::PoolUsage{.mysql_size = 8});
                          }};
};

TEST_F(RestRoutesTest, CreateAnswers201WithLocationAndETag) {
  HttpResponse r = Send(http::verb::post, "/v1/users",
                        R"({"username":"alice","email":"alice@example.com","full_name":"Alice"})");
  ASSERT_EQ(r.result_int(), 201u) << r.body();
  const json user = Body(r);
  EXPECT_EQ(r[http::field::location], "/v1/users/" + std::to_string(user["id"].get<int>()));
  EXPECT_EQ(r[http::field::etag], "\"1\"");
  EXPECT_EQ(r[http::field::content_type], "application/json");
  EXPECT_EQ(user["username"], "alice");
  EXPECT_EQ(user["full_name"], "Alice");
  for (const char* key : {"id", "email", "version", "created_at_ms", "updated_at_ms"}) {
    EXPECT_TRUE(user.contains(key)) << key;
  }
}

TEST_F(RestRoutesTest, GetCarriesETagAndHeadDropsTheBody) {
  const json user = Create("bob");
  const std::string path = "/v1/users/" + std::to_string(user["id"].get<int>());
  HttpResponse r = Send(http::verb::get, path, std::nullopt, kReaderToken);
  ASSERT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(r[http::field::etag], "\"1\"");
  EXPECT_EQ(Body(r), user);
  HttpResponse head = Send(http::verb::head, path, std::nullopt, kReaderToken);
  EXPECT_EQ(head.result_int(), 200u);
  EXPECT_TRUE(head.body().empty());
  EXPECT_EQ(head[http::field::content_length], std::to_string(r.body().size()));
}

TEST_F(RestRoutesTest, IfMatchIsTheExpectedVersion) {
  const json user = Create("carol");
  const std::string path = "/v1/users/" + std::to_string(user["id"].get<int>());
  HttpResponse stale = Send(http::verb::patch, path, R"({"full_name":"X"})", kAdminToken,
                            {{http::field::if_match, "\"7\""}});
  EXPECT_EQ(stale.result_int(), 409u);
  EXPECT_EQ(Body(stale)["code"], "CONFLICT");
  HttpResponse ok = Send(http::verb::patch, path, R"({"full_name":"Y"})", kAdminToken,
                         {{http::field::if_match, "\"1\""}});
  ASSERT_EQ(ok.result_int(), 200u) << ok.body();
  EXPECT_EQ(ok[http::field::etag], "\"2\"");
  EXPECT_EQ(Body(ok)["full_name"], "Y");
  HttpResponse unconditional = Send(http::verb::patch, path, R"({"email":"c2@example.com"})");
  EXPECT_EQ(unconditional.result_int(), 200u);
  EXPECT_EQ(Body(unconditional)["version"], 3);
  for (const char* bad : {"3", "\"x\"", "W/\"3\"", "\"0\"", "\"1\", \"2\""}) {
    HttpResponse r = Send(http::verb::patch, path, R"({"full_name":"Z"})", kAdminToken,
                          {{http::field::if_match, bad}});
    EXPECT_EQ(r.result_int(), 400u) << bad;
    EXPECT_EQ(Body(r)["field"], "If-Match") << bad;
  }
}

TEST_F(RestRoutesTest, DeleteAnswers204ThenNotFound) {
  const json user = Create("dave");
  const std::string path = "/v1/users/" + std::to_string(user["id"].get<int>());
  HttpResponse r = Send(http::verb::delete_, path);
  EXPECT_EQ(r.result_int(), 204u);
  EXPECT_TRUE(r.body().empty());
  HttpResponse gone = Send(http::verb::get, path);
  EXPECT_EQ(gone.result_int(), 404u);
  EXPECT_EQ(gone[http::field::content_type], "application/problem+json");
  const json problem = Body(gone);
  EXPECT_EQ(problem["type"], "about:blank");
  EXPECT_EQ(problem["title"], "Not Found");
  EXPECT_EQ(problem["status"], 404);
  EXPECT_EQ(problem["code"], "NOT_FOUND");
  EXPECT_TRUE(problem.contains("detail"));
}

TEST_F(RestRoutesTest, BatchGetAndList) {
  const json a = Create("erin");
  const json b = Create("frank");
  HttpResponse batch = Send(http::verb::post, "/v1/users:batchGet",
                            json{{"ids", {b["id"], 999, a["id"]}}}.dump(), kReaderToken);
  ASSERT_EQ(batch.result_int(), 200u) << batch.body();
  EXPECT_EQ(Body(batch)["users"], json::array({b, a}));
  HttpResponse page =
      Send(http::verb::get, "/v1/users?after_id=0&limit=1", std::nullopt, kReaderToken);
  ASSERT_EQ(page.result_int(), 200u) << page.body();
  EXPECT_EQ(Body(page)["users"], json::array({a}));
  EXPECT_EQ(Body(page)["next_after_id"], a["id"]);
  HttpResponse rest =
      Send(http::verb::get, "/v1/users?after_id=" + a["id"].dump(), std::nullopt, kReaderToken);
  EXPECT_EQ(Body(rest)["users"], json::array({b}));
  EXPECT_EQ(Body(rest)["next_after_id"], 0);
}

TEST_F(RestRoutesTest, ErrorsMapToStatusesAndProblems) {
  HttpResponse r = Send(http::verb::get, "/v1/users/1", std::nullopt, "");
  EXPECT_EQ(r.result_int(), 401u);
  EXPECT_EQ(r[http::field::www_authenticate], "Bearer");
  EXPECT_EQ(Body(r)["code"], "UNAUTHENTICATED");
  r = Send(http::verb::delete_, "/v1/users/1", std::nullopt, kReaderToken);
  EXPECT_EQ(r.result_int(), 403u);
  EXPECT_EQ(Body(r)["code"], "PERMISSION_DENIED");
  r = Send(http::verb::post, "/v1/users",
           R"({"username":"No Way","email":"a@b.c","full_name":"x"})");
  EXPECT_EQ(r.result_int(), 400u);
  EXPECT_EQ(Body(r)["field"], "username");
  Create("gina");
  r = Send(http::verb::post, "/v1/users",
           R"({"username":"gina","email":"other@example.com","full_name":"x"})");
  EXPECT_EQ(r.result_int(), 409u);
  r = Send(http::verb::get, "/v1/users/0");
  EXPECT_EQ(r.result_int(), 400u);
  EXPECT_EQ(Body(r)["field"], "id");
}

TEST_F(RestRoutesTest, MalformedHttpInputIsRejectedBeforeTheCore) {
  HttpResponse r = Send(http::verb::post, "/v1/users", R"({"username": "x",)");
  EXPECT_EQ(r.result_int(), 400u);
  EXPECT_NE(Body(r)["detail"].get<std::string>().find("at byte 18"), std::string::npos) << r.body();
  r = Send(http::verb::post, "/v1/users", R"({"username": 5, "email": "a@b.c"})");
  EXPECT_EQ(r.result_int(), 400u);
  EXPECT_EQ(Body(r)["field"], "username");
  r = Send(http::verb::post, "/v1/users:batchGet", R"({"ids": ["1"]})");
  EXPECT_EQ(r.result_int(), 400u);
  EXPECT_EQ(Body(r)["field"], "ids");
  r = Send(http::verb::post, "/v1/users", R"([1, 2])");
  EXPECT_EQ(r.result_int(), 400u);
  // Found by the REST fuzzer: a number past a double's range was a 500.
  for (const char* body : {R"({"username": 5555552E7777777})", R"({"ids": [1E400]})",
                           R"({"expected_version": -1e999})"}) {
    r = Send(http::verb::post, "/v1/users", body);
    EXPECT_EQ(r.result_int(), 400u) << body;
    EXPECT_EQ(Body(r)["code"], "INVALID_ARGUMENT") << body;
    EXPECT_NE(Body(r)["detail"].get<std::string>().find("out of range"), std::string::npos)
        << r.body();
  }
  r = Send(http::verb::get, "/v1/users/abc");
  EXPECT_EQ(r.result_int(), 400u);
  EXPECT_EQ(Body(r)["field"], "id");
  r = Send(http::verb::get, "/v1/users?limit=ten");
  EXPECT_EQ(r.result_int(), 400u);
  EXPECT_EQ(Body(r)["field"], "limit");

  HttpRequest text{http::verb::post, "/v1/users", 11};
  text.set(http::field::authorization, "Bearer " + std::string(kAdminToken));
  text.set(http::field::content_type, "text/plain");
  text.body() = "{}";
  text.prepare_payload();
  r = router_.Dispatch(text);
  EXPECT_EQ(r.result_int(), 415u);
  EXPECT_EQ(r[http::field::content_type], "application/problem+json");
}

// Regression: the routes checked the path, query, media type and body
// before the core authenticated, so a caller without a token learnt 400/415
// about its input instead of 401.
TEST_F(RestRoutesTest, RejectedInputFromACallerWithoutTheRightIsAnsweredAsSuch) {
  HttpResponse r = Send(http::verb::post, "/v1/users", R"({"username": "x",)", "");
  EXPECT_EQ(r.result_int(), 401u) << r.body();
  EXPECT_EQ(r[http::field::www_authenticate], "Bearer");
  EXPECT_EQ(Send(http::verb::get, "/v1/users/abc", std::nullopt, "").result_int(), 401u);
  EXPECT_EQ(Send(http::verb::get, "/v1/users?limit=ten", std::nullopt, "wrong").result_int(), 401u);
  // A reader may not create: that comes before what is wrong with the body.
  EXPECT_EQ(Send(http::verb::post, "/v1/users", "[1, 2]", kReaderToken).result_int(), 403u);
  HttpRequest text{http::verb::post, "/v1/users", 11};
  text.set(http::field::content_type, "text/plain");
  text.body() = "{}";
  text.prepare_payload();
  EXPECT_EQ(router_.Dispatch(text).result_int(), 401u);
  // With the right, the input's own error stands.
  EXPECT_EQ(Send(http::verb::get, "/v1/users/abc", std::nullopt, kReaderToken).result_int(), 400u);
}

TEST_F(RestRoutesTest, UnknownRoutesAndMethods) {
  HttpResponse r = Send(http::verb::get, "/v2/nothing");
  EXPECT_EQ(r.result_int(), 404u);
  EXPECT_EQ(r[http::field::content_type], "application/problem+json");
  EXPECT_EQ(Body(r)["code"], "NOT_FOUND");
  r = Send(http::verb::put, "/v1/users/1", "{}");
  EXPECT_EQ(r.result_int(), 405u);
  EXPECT_EQ(r[http::field::allow], "GET, HEAD, PATCH, DELETE");
  r = Send(http::verb::delete_, "/v1/users");
  EXPECT_EQ(r.result_int(), 405u);
  EXPECT_EQ(r[http::field::allow], "POST, GET, HEAD");
}

TEST_F(RestRoutesTest, MetricsCountRestCallsByOperationAndCode) {
  Create("hank");
  Send(http::verb::get, "/v1/users/424242");
  const auto& get = metrics_.series(Protocol::kRest, Operation::kGetUser);
  EXPECT_EQ(get.requests.load(), 1u);
  EXPECT_EQ(get.by_code[static_cast<std::size_t>(StatusCode::kNotFound)].load(), 1u);
  HttpResponse r = Send(http::verb::get, "/metrics", std::nullopt, "");
  ASSERT_EQ(r.result_int(), 200u);
  EXPECT_NE(r.body().find("polycrud_requests_total{protocol=\"rest\",operation=\"create_user\"} 1"),
            std::string::npos);
  EXPECT_NE(r.body().find("polycrud_mysql_pool_size 8"), std::string::npos);
}

TEST_F(RestRoutesTest, HealthAndReadiness) {
  HttpResponse r = Send(http::verb::get, "/healthz", std::nullopt, "");
  EXPECT_EQ(r.result_int(), 200u);
  r = Send(http::verb::get, "/readyz", std::nullopt, "");
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(Body(r)["mysql"], "up");
  cache_.SetUnavailable(true);
  r = Send(http::verb::get, "/readyz", std::nullopt, "");
  EXPECT_EQ(r.result_int(), 503u);
  EXPECT_EQ(Body(r)["redis"], "down");
  // What a balancer asks: the server still answers from MySQL.
  r = Send(http::verb::get, "/readyz/serving", std::nullopt, "");
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(Body(r)["redis"], "down");
  store_.SetUnavailable(true);
  r = Send(http::verb::get, "/readyz/serving", std::nullopt, "");
  EXPECT_EQ(r.result_int(), 503u) << r.body();
  EXPECT_EQ(Body(r)["status"], "unavailable");
  store_.SetUnavailable(false);
  cache_.SetUnavailable(false);
  service_.BeginDrain();
  for (const char* path : {"/readyz", "/readyz/serving"}) {
    r = Send(http::verb::get, path, std::nullopt, "");
    EXPECT_EQ(r.result_int(), 503u) << path;
    EXPECT_EQ(Body(r)["status"], "draining") << path;
  }
}

TEST_F(RestRoutesTest, OpenApiDocumentsExactlyTheServedRoutes) {
  HttpResponse r = Send(http::verb::get, "/openapi.json", std::nullopt, "");
  ASSERT_EQ(r.result_int(), 200u);
  const json spec = Body(r);
  EXPECT_EQ(spec, json::parse(openapi::OpenApiJson()));
  std::set<std::pair<std::string, std::string>> served;
  for (const RouteInfo& route : router_.routes()) {
    std::string method(http::to_string(route.method));
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    served.emplace(route.path_template, method);
  }
  std::set<std::pair<std::string, std::string>> documented;
  for (const auto& [path, item] : spec.at("paths").items()) {
    for (const auto& [method, operation] : item.items()) {
      if (method == "parameters") continue;
      documented.emplace(path, method);
      EXPECT_TRUE(operation.contains("responses")) << path << " " << method;
    }
  }
  EXPECT_EQ(served, documented);
}

}  // namespace
}  // namespace polycrud::rest_adapter
