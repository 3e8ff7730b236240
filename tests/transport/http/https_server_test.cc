// The HTTP server under the REST and SOAP faces serving HTTPS: requests and
// keep-alive over TLS, a large answer, cleartext and silent clients on the
// TLS port, and mutual TLS. The client is polycrud::tls's TlsChannel over a
// plain socket; certificates come from deploy/local/tls.sh.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "tests/support/raw_socket.h"
#include "tests/support/server_process.h"
#include "transport/http/http_server.h"
#include "transport/tls/tls.h"

namespace polycrud::http_transport {
namespace {

using namespace std::chrono_literals;
using testing::Certificates;
using testing::RawSocket;
using testing::TestCertificates;

// A TLS client connection to 127.0.0.1:port that verifies "localhost".
class TlsClient {
 public:
  TlsClient(int port, const tls::TlsFiles& files)
      : ctx_(tls::MakeClientContext(files)), fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("connect failed");
    }
    channel_ = tls::TlsChannel::Client(ctx_.get(), fd_, "localhost");
  }
  ~TlsClient() {
    channel_.reset();
    close(fd_);
  }
  std::error_code Handshake() { return channel_->Handshake(Deadline()); }
  std::error_code Send(std::string_view data) {
    return channel_->WriteAll(data.data(), data.size(), Deadline());
  }
  // Reads until `text` arrived (true), or the stream ended or failed.
  bool ReadUntil(const std::string& text, std::string& received) {
    std::size_t from = 0;  // where `text` may start that was not searched yet
    while (received.find(text, from) == std::string::npos) {
      from = received.size() >= text.size() ? received.size() - text.size() + 1 : 0;
      char buffer[16 * 1024];
      std::size_t n = 0;
      if (channel_->ReadSome(buffer, sizeof buffer, Deadline(), false, n) || n == 0) return false;
      received.append(buffer, n);
    }
    return true;
  }

 private:
  static IoClock::time_point Deadline() { return IoClock::now() + 10s; }
  tls::SslCtxPtr ctx_;
  int fd_;
  std::unique_ptr<tls::TlsChannel> channel_;
};

class HttpsServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options) {
    const TestCertificates& certs = Certificates();
    options.port = 0;
    options.tls.cert = certs.server_cert();
    options.tls.key = certs.server_key();
    server_ = std::make_unique<HttpServer>(
        HttpHandlers{.handle =
                         [this](HttpRequest& request) {
                           handled_.fetch_add(1);
                           HttpResponse response(http::status::ok, request.version());
                           response.body() = request.target() == "/large"
                                                 ? std::string(8 * 1024 * 1024, 'x') + "end"
                                                 : "hello " + std::string(request.target());
                           response.prepare_payload();
                           return response;
                         },
                     .read_error =
                         [](http::status status, std::string_view message) {
                           HttpResponse response(status, 11);
                           response.body() = std::string(message);
                           return response;
                         },
                     .internal_error = [] { return HttpResponse(http::status::ok, 11); }},
        options);
    server_->Start();
  }
  int port() const { return server_->port(); }
  static tls::TlsFiles Trusting() { return {.ca = Certificates().ca()}; }

  std::unique_ptr<HttpServer> server_;
  std::atomic<int> handled_{0};
};

TEST_F(HttpsServerTest, AnswersOverTlsOnAKeptConnection) {
  Start({.threads = 2});
  TlsClient client(port(), Trusting());
  ASSERT_FALSE(client.Handshake());
  std::string answer;
  ASSERT_FALSE(client.Send("GET /one HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  ASSERT_TRUE(client.ReadUntil("hello /one", answer)) << answer;
  ASSERT_FALSE(client.Send("GET /two HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  ASSERT_TRUE(client.ReadUntil("hello /two", answer)) << answer;
  EXPECT_EQ(answer.find("HTTP/1.1 200 OK"), 0u) << answer;
  EXPECT_EQ(handled_.load(), 2);
}

TEST_F(HttpsServerTest, AnAnswerLargerThanTheSocketTakesArrivesWhole) {
  Start({.threads = 1});
  TlsClient client(port(), Trusting());
  ASSERT_FALSE(client.Handshake());
  ASSERT_FALSE(client.Send("GET /large HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  std::string answer;
  ASSERT_TRUE(client.ReadUntil("xend", answer));
  EXPECT_GT(answer.size(), 8u * 1024 * 1024);
}

TEST_F(HttpsServerTest, ACleartextRequestIsClosedWithoutReachingAHandler) {
  Start({.threads = 1});
  RawSocket plain(port());
  plain.Send("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(plain.ReadToClose().find("hello"), std::string::npos);
  EXPECT_EQ(handled_.load(), 0);
}

TEST_F(HttpsServerTest, AHandshakeThatNeverComesIsClosedAfterTheIoTimeout) {
  Start({.threads = 1, .io_timeout_ms = 300});
  RawSocket silent(port());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(silent.ReadToClose(), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  TlsClient client(port(), Trusting());  // others are served on
  ASSERT_FALSE(client.Handshake());
}

TEST_F(HttpsServerTest, StopDoesNotWaitForAHandshakeThatNeverComes) {
  Start({.threads = 1});  // the handshake may take the 10 s I/O timeout
  RawSocket silent(port());
  TlsClient served(port(), Trusting());
  ASSERT_FALSE(served.Handshake());
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(silent.ReadToClose(), "");
}

TEST_F(HttpsServerTest, AClientThatDoesNotTrustTheServersCaFailsItsHandshake) {
  Start({.threads = 1});
  TlsClient client(port(), {.ca = Certificates("other").ca()});
  EXPECT_TRUE(client.Handshake());
  EXPECT_EQ(handled_.load(), 0);
}

TEST_F(HttpsServerTest, MutualTlsAnswersOnlyAClientWithACertificateOfTheClientCa) {
  const TestCertificates& certs = Certificates();
  Start({.threads = 1, .tls = {.ca = certs.ca()}});
  // TLS 1.3 ends the client's handshake before the server has checked the
  // client's certificate: the refusal shows on the handshake or on the
  // first read, and no request reaches the handler either way.
  const auto refused = [&](const tls::TlsFiles& files) {
    TlsClient client(port(), files);
    if (client.Handshake()) return true;
    std::string answer;
    return client.Send("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n") ||
           !client.ReadUntil("hello", answer);
  };
  EXPECT_TRUE(refused({.ca = certs.ca()}));
  const TestCertificates& stranger = Certificates("other");
  EXPECT_TRUE(
      refused({.cert = stranger.client_cert(), .key = stranger.client_key(), .ca = certs.ca()}));
  EXPECT_EQ(handled_.load(), 0);
  EXPECT_FALSE(refused({.cert = certs.client_cert(), .key = certs.client_key(), .ca = certs.ca()}));
  EXPECT_EQ(handled_.load(), 1);
}

}  // namespace
}  // namespace polycrud::http_transport
