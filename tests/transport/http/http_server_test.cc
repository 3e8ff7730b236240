// The HTTP/1.1 server under the REST and SOAP faces, with handlers of the
// test's own: a request reaches its handler only once it is whole (so a
// slow client holds no thread), the answer's framing is the handler's (HEAD),
// "100 Continue", the keep-alive request limit, read errors, and the
// connection budget.
#include "transport/http/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "runtime/connection_budget.h"
#include "tests/support/raw_socket.h"

namespace polycrud::http_transport {
namespace {

using testing::RawSocket;

// A server on a free loopback port whose handler echoes the method and body
// and counts the requests it was given.
class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options) {
    options.port = 0;
    server_ = std::make_unique<HttpServer>(
        HttpHandlers{.handle =
                         [this](HttpRequest& request) {
                           handled_.fetch_add(1);
                           if (request.target() == "/throw") throw std::runtime_error("boom");
                           HttpResponse response(http::status::ok, request.version());
                           response.body() =
                               std::string(request.method_string()) + " " + request.body();
                           if (request.target() == "/large") {
                             response.body() = std::string(8 * 1024 * 1024, 'x') + "end";
                           }
                           response.prepare_payload();
                           if (request.method() == http::verb::head) {
                             response.body().clear();  // GET's length, no body
                           }
                           return response;
                         },
                     .read_error =
                         [](http::status status, std::string_view message) {
                           HttpResponse response(status, 11);
                           response.body() = "refused: " + std::string(message);
                           return response;
                         },
                     .internal_error =
                         [] {
                           HttpResponse response(http::status::internal_server_error, 11);
                           response.body() = "internal";
                           return response;
                         }},
        options);
    server_->Start();
  }
  int port() const { return server_->port(); }

  std::unique_ptr<HttpServer> server_;
  std::atomic<int> handled_{0};
};

TEST_F(HttpServerTest, ARequestReachesItsHandlerOnlyWholeSoASlowClientHoldsNoThread) {
  Start({.threads = 1});
  RawSocket slow(port());
  slow.Send("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhalf");
  // The one thread is free for another client meanwhile.
  RawSocket other(port());
  other.Send("POST /y HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok");
  std::string answer;
  ASSERT_TRUE(other.ReadUntil("POST ok", answer)) << answer;
  EXPECT_EQ(handled_.load(), 1);
  slow.Send("-a-bod");
  std::string rest;
  ASSERT_TRUE(slow.ReadUntil("POST half-a-bod", rest)) << rest;
  EXPECT_EQ(handled_.load(), 2);
}

// An answer larger than the socket takes at once is written in part on the
// spot and the rest as the client reads, to its last byte.
TEST_F(HttpServerTest, AnAnswerLargerThanTheSocketTakesArrivesWhole) {
  Start({});
  RawSocket socket(port());
  socket.Send("GET /large HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n");
  std::string received;
  ASSERT_TRUE(socket.ReadUntil("GET ", received)) << received.size();
  EXPECT_NE(received.find("Content-Length: 8388611\r\n"), std::string::npos);
  EXPECT_NE(received.find("xxxxendHTTP/1.1 200 OK"), std::string::npos);
}

TEST_F(HttpServerTest, AHeadAnswerKeepsTheLengthItsHandlerSet) {
  Start({});
  RawSocket socket(port());
  socket.Send("HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n");
  std::string answers;
  ASSERT_TRUE(socket.ReadUntil("GET ", answers)) << answers;
  // "HEAD " is five bytes: that length, no body, and the next answer follows.
  EXPECT_EQ(answers.find("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK"), 0u)
      << answers;
}

TEST_F(HttpServerTest, ExpectContinueGetsContinueThenTheAnswer) {
  Start({});
  RawSocket socket(port());
  socket.Send("POST /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  std::string answers;
  ASSERT_TRUE(socket.ReadUntil("HTTP/1.1 100 Continue\r\n\r\n", answers)) << answers;
  socket.Send("abc");
  ASSERT_TRUE(socket.ReadUntil("POST abc", answers)) << answers;
}

TEST_F(HttpServerTest, TheLastRequestAConnectionMaySendIsAnsweredWithClose) {
  Start({.max_keep_alive_requests = 2});
  RawSocket socket(port());
  socket.Send("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  const std::string answers = socket.ReadToClose();
  const std::size_t second = answers.find("HTTP/1.1 200 OK", 1);
  ASSERT_NE(second, std::string::npos) << answers;
  // Only the second answer says close, and then the server closes.
  EXPECT_NE(answers.find("Connection: close", second), std::string::npos) << answers;
  EXPECT_GT(answers.find("Connection: close"), second) << answers;
  EXPECT_EQ(handled_.load(), 2);
}

TEST_F(HttpServerTest, ABodyOverTheLimitGetsTheReadErrorAnswerAndTheConnectionCloses) {
  Start({.max_body_bytes = 8});
  RawSocket socket(port());
  socket.Send("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n123456789");
  const std::string answer = socket.ReadToClose();
  EXPECT_EQ(answer.find("HTTP/1.1 413 Payload Too Large\r\n"), 0u) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  EXPECT_NE(answer.find("refused"), std::string::npos) << answer;
  EXPECT_EQ(handled_.load(), 0);
}

// A handler that throws gets the face's internal-error answer (the server
// logs the exception), and the connection serves the next request.
TEST_F(HttpServerTest, AHandlerThatThrowsGetsTheInternalErrorAnswerAndTheConnectionGoesOn) {
  Start({});
  RawSocket socket(port());
  socket.Send("GET /throw HTTP/1.1\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n");
  std::string answers;
  ASSERT_TRUE(socket.ReadUntil("GET ", answers)) << answers;
  EXPECT_EQ(answers.find("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 8\r\n\r\n"
                         "internalHTTP/1.1 200 OK"),
            0u)
      << answers;
  EXPECT_EQ(handled_.load(), 2);
}

TEST_F(HttpServerTest, GarbageGetsTheMalformedAnswer) {
  Start({});
  RawSocket socket(port());
  socket.Send("NOT HTTP AT ALL\r\n\r\n");
  const std::string answer = socket.ReadToClose();
  EXPECT_EQ(answer.find("HTTP/1.1 400 Bad Request\r\n"), 0u) << answer;
  EXPECT_EQ(handled_.load(), 0);
}

TEST_F(HttpServerTest, AConnectionBeyondTheBudgetIsClosedUnanswered) {
  runtime::ConnectionBudget budget(1);
  Start({.connections = &budget});
  RawSocket held(port());
  held.Send("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n");
  std::string answer;
  ASSERT_TRUE(held.ReadUntil("GET ", answer)) << answer;
  RawSocket refused(port());
  refused.Send("GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(refused.ReadToClose(), "");
  EXPECT_EQ(budget.refused(), 1u);
}

}  // namespace
}  // namespace polycrud::http_transport
