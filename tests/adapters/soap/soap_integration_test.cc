// End-to-end tests of what is specific to the SOAP face of polycrud-server:
// the WSDL at GET /soap?wsdl, the request size bound, timeouts of slow
// clients, HTTP keep-alive, the fault detail, and malformed input. They talk
// raw HTTP over a socket so every byte on the wire is visible.
#include <arpa/inet.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clients/protocol_client.h"
#include "tests/support/server_process.h"

namespace polycrud::testing {

using clients::MakeProtocolClient;
using clients::ProtocolClient;
namespace {

using namespace std::chrono_literals;

struct HttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};

// A client socket to 127.0.0.1:port with a receive timeout.
class RawConnection {
 public:
  explicit RawConnection(int port, int recv_timeout_ms = 10'000) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    timeval tv{.tv_sec = recv_timeout_ms / 1000, .tv_usec = (recv_timeout_ms % 1000) * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConnection() { close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }

  // False if the peer closed the connection before everything was sent.
  bool Send(const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  // One HTTP response (Content-Length framed), or nullopt if the connection
  // closed or timed out first.
  std::optional<HttpResponse> Read() {
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    HttpResponse response;
    response.headers = buffer_.substr(0, header_end);
    response.status = std::stoi(response.headers.substr(9, 3));
    std::size_t length = 0;
    std::string lower = response.headers;
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    const std::size_t at = lower.find("content-length:");
    if (at != std::string::npos) length = std::stoul(lower.substr(at + 15));
    buffer_.erase(0, header_end + 4);
    while (buffer_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    response.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return response;
  }

  // True once the server closed the connection (reads end-of-file).
  bool ClosedByPeer() {
    char c;
    return recv(fd_, &c, 1, 0) == 0;
  }

  // True if the server has neither closed the connection nor sent anything
  // on it (does not wait).
  bool OpenAndSilent() {
    char c;
    const ssize_t n = recv(fd_, &c, 1, MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

 private:
  bool Fill() {
    char chunk[4096];
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

std::string Envelope(const std::string& body) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
         "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" "
         "xmlns:pc=\"urn:polycrud:v1\"><SOAP-ENV:Body>" +
         body + "</SOAP-ENV:Body></SOAP-ENV:Envelope>";
}

std::string Post(const std::string& xml, const std::string& token = "",
                 const std::string& action = "") {
  std::string request =
      "POST /soap HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: text/xml; charset=utf-8\r\n"
      "Connection: keep-alive\r\n"
      "SOAPAction: \"urn:polycrud:v1#" +
      action + "\"\r\n";
  if (!token.empty()) request += "Authorization: Bearer " + token + "\r\n";
  return request + "Content-Length: " + std::to_string(xml.size()) + "\r\n\r\n" + xml;
}

std::string PingRequest() { return Post(Envelope("<pc:Ping/>"), "", "Ping"); }

class SoapServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess(
        {.protocols = {"soap"},
         .extra_args = {"--soap-max-request-bytes", "4096", "--soap-timeout-ms", "500"}});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static int port() { return server_->port("soap"); }
  static ServerProcess* server_;
};
ServerProcess* SoapServerTest::server_ = nullptr;

TEST_F(SoapServerTest, ServesTheWsdl) {
  RawConnection connection(port());
  ASSERT_TRUE(connection.connected());
  ASSERT_TRUE(connection.Send("GET /soap?wsdl HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  std::optional<HttpResponse> response = connection.Read();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_NE(response->headers.find("text/xml"), std::string::npos) << response->headers;
  EXPECT_NE(response->body.find("targetNamespace=\"urn:polycrud:v1\""), std::string::npos);
  EXPECT_NE(response->body.find("</wsdl:definitions>"), std::string::npos);
}

TEST_F(SoapServerTest, UnknownGetPathIsNotFound) {
  RawConnection connection(port());
  ASSERT_TRUE(connection.Send("GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  std::optional<HttpResponse> response = connection.Read();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 404);
  EXPECT_NE(response->body.find(":Client</faultcode>"), std::string::npos) << response->body;
  EXPECT_NE(
      response->body.find("<detail><code xmlns=\"urn:polycrud:v1\">NOT_FOUND</code></detail>"),
      std::string::npos)
      << response->body;
}

TEST_F(SoapServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  RawConnection connection(port());
  // More bytes in all than the 4096-byte request bound: the bound is per request.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(connection.Send(PingRequest())) << "request " << i;
    std::optional<HttpResponse> response = connection.Read();
    ASSERT_TRUE(response.has_value()) << "request " << i;
    EXPECT_EQ(response->status, 200);
    EXPECT_NE(response->body.find("polycrud "), std::string::npos) << response->body;
  }
  // The token of one request never carries over to the next on the same
  // connection.
  const std::string list = Envelope("<pc:ListUsers><pc:limit>1</pc:limit></pc:ListUsers>");
  ASSERT_TRUE(connection.Send(Post(list, kReaderToken, "ListUsers")));
  std::optional<HttpResponse> listed = connection.Read();
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(listed->status, 200) << listed->body;
  ASSERT_TRUE(connection.Send(Post(list, "", "ListUsers")));
  std::optional<HttpResponse> anonymous = connection.Read();
  ASSERT_TRUE(anonymous.has_value());
  EXPECT_NE(anonymous->body.find(">UNAUTHENTICATED</"), std::string::npos) << anonymous->body;
}

// The value of the X-Request-Id header in `headers` ("" without one); the
// name is matched without regard to case.
std::string RequestIdHeader(const std::string& headers) {
  std::string lower = headers;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  constexpr std::string_view kName = "x-request-id:";
  const std::size_t at = lower.find(kName);
  if (at == std::string::npos) return "";
  std::size_t begin = at + kName.size();
  while (begin < headers.size() && headers[begin] == ' ') ++begin;
  const std::size_t end = headers.find_first_of("\r\n", begin);
  return headers.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

TEST_F(SoapServerTest, TheRequestIdComesBackAsSentAndNeverCarriesOver) {
  RawConnection connection(port());
  const std::string list = Envelope("<pc:ListUsers><pc:limit>1</pc:limit></pc:ListUsers>");
  std::string named = Post(list, kReaderToken, "ListUsers");
  named.insert(named.find("\r\n") + 2, "X-Request-Id: soap-trace-3\r\n");
  ASSERT_TRUE(connection.Send(named));
  std::optional<HttpResponse> first = connection.Read();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(RequestIdHeader(first->headers), "soap-trace-3") << first->headers;
  // A fault names its request too; the next request on the connection, which
  // sends none, gets a new id rather than the previous one.
  ASSERT_TRUE(connection.Send(Post(list, "", "ListUsers")));
  std::optional<HttpResponse> second = connection.Read();
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(second->body.find(">UNAUTHENTICATED</"), std::string::npos) << second->body;
  EXPECT_EQ(RequestIdHeader(second->headers).size(), 16u) << second->headers;
}

// A fault gSOAP raises itself (the operation never runs) must not repeat the
// id of the connection's previous request.
TEST_F(SoapServerTest, AFaultOfGsoapItselfDoesNotRepeatThePreviousRequestId) {
  RawConnection connection(port());
  const std::string list = Envelope("<pc:ListUsers><pc:limit>1</pc:limit></pc:ListUsers>");
  std::string named = Post(list, kReaderToken, "ListUsers");
  named.insert(named.find("\r\n") + 2, "X-Request-Id: soap-trace-4\r\n");
  ASSERT_TRUE(connection.Send(named));
  std::optional<HttpResponse> first = connection.Read();
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(RequestIdHeader(first->headers), "soap-trace-4");
  ASSERT_TRUE(connection.Send(Post(Envelope("<pc:NoSuchOperation/>"), kReaderToken, "Nothing")));
  std::optional<HttpResponse> fault = connection.Read();
  ASSERT_TRUE(fault.has_value());
  EXPECT_NE(fault->status, 200) << fault->body;
  EXPECT_EQ(RequestIdHeader(fault->headers), "") << fault->headers;
}

TEST_F(SoapServerTest, FaultDetailCarriesCodeAndField) {
  RawConnection connection(port());
  ASSERT_TRUE(connection.Send(Post(Envelope("<pc:CreateUser><pc:username>Not Valid</pc:username>"
                                            "<pc:email>a@example.com</pc:email>"
                                            "<pc:full_name>X</pc:full_name></pc:CreateUser>"),
                                   kAdminToken, "CreateUser")));
  std::optional<HttpResponse> response = connection.Read();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 500);
  EXPECT_NE(response->body.find(":Client</faultcode>"), std::string::npos) << response->body;
  EXPECT_NE(response->body.find("<detail><code xmlns=\"urn:polycrud:v1\">INVALID_ARGUMENT</code>"
                                "<field xmlns=\"urn:polycrud:v1\">username</field></detail>"),
            std::string::npos)
      << response->body;
}

// Faults that gSOAP raises itself, before or instead of an operation, carry
// the core code like every other fault: a request that cannot be read as a
// call of the service is INVALID_ARGUMENT, faultcode Client, HTTP 500.
TEST_F(SoapServerTest, FaultsOfGsoapItselfCarryTheCoreCode) {
  struct Case {
    std::string label;
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {"malformed XML",
       Post(Envelope("<pc:GetUser><<pc:id>1</pc:id></pc:GetUser>"), kAdminToken, "GetUser"), 500},
      {"mismatched tags", Post("<?xml version=\"1.0\"?><a><b></a>", kAdminToken, "GetUser"), 500},
      {"non-numeric id",
       Post(Envelope("<pc:GetUser><pc:id>abc</pc:id></pc:GetUser>"), kAdminToken, "GetUser"), 500},
      {"id beyond int64",
       Post(Envelope("<pc:GetUser><pc:id>99999999999999999999</pc:id></pc:GetUser>"), kAdminToken,
            "GetUser"),
       500},
      {"unknown operation", Post(Envelope("<pc:NoSuchOperation/>"), kAdminToken, "Nothing"), 500},
      {"empty Body", Post(Envelope(""), kAdminToken, "GetUser"), 500},
      {"empty request", Post("", kAdminToken, "GetUser"), 500},
      {"JSON instead of XML",
       "POST /soap HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
       "Content-Length: 7\r\n\r\n{\"a\":1}",
       500},
      {"wrong HTTP method",
       "PUT /soap HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
       "Content-Length: 1\r\n\r\nx",
       405},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    RawConnection connection(port());
    ASSERT_TRUE(connection.Send(c.request));
    std::optional<HttpResponse> response = connection.Read();
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(response->status, c.status) << response->body;
    EXPECT_NE(response->body.find("<faultcode>SOAP-ENV:Client</faultcode>"), std::string::npos)
        << response->body;
    EXPECT_NE(response->body.find(
                  "<detail><code xmlns=\"urn:polycrud:v1\">INVALID_ARGUMENT</code></detail>"),
              std::string::npos)
        << response->body;
  }
}

TEST_F(SoapServerTest, OversizedRequestIsRejected) {
  RawConnection connection(port());
  const std::string huge = Envelope(
      "<pc:CreateUser><pc:username>big</pc:username>"
      "<pc:email>big@example.com</pc:email><pc:full_name>" +
      std::string(8192, 'x') + "</pc:full_name></pc:CreateUser>");
  connection.Send(Post(huge, kAdminToken, "CreateUser"));
  std::optional<HttpResponse> response = connection.Read();
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 413) << response->body;
  EXPECT_NE(response->headers.find("413 Payload Too Large"), std::string::npos)
      << response->headers;
  EXPECT_NE(response->body.find("<faultcode>SOAP-ENV:Client</faultcode>"), std::string::npos)
      << response->body;
  EXPECT_NE(response->body.find(
                "<detail><code xmlns=\"urn:polycrud:v1\">INVALID_ARGUMENT</code></detail>"),
            std::string::npos)
      << response->body;
  RawConnection next(port());
  ASSERT_TRUE(next.Send(PingRequest()));
  std::optional<HttpResponse> pong = next.Read();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->status, 200);
}

TEST_F(SoapServerTest, SilentClientIsClosedAfterTheTimeout) {
  RawConnection connection(port(), /*recv_timeout_ms=*/5'000);
  ASSERT_TRUE(connection.connected());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(connection.ClosedByPeer());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
}

TEST_F(SoapServerTest, SurvivesMalformedEnvelopes) {
  for (const std::string& body :
       {std::string("<not xml"), std::string("<?xml version=\"1.0\"?><a><b></a>"),
        Envelope("<pc:GetUser><pc:id>not-a-number</pc:id></pc:GetUser>"),
        Envelope("<pc:NoSuchOperation/>")}) {
    RawConnection connection(port());
    connection.Send(Post(body, kAdminToken, "GetUser"));
    std::optional<HttpResponse> response = connection.Read();
    if (response.has_value()) {
      EXPECT_NE(response->status, 200) << body;
    }
  }
  std::unique_ptr<ProtocolClient> client = MakeProtocolClient("soap", port());
  EXPECT_TRUE(client->Ping().ok());
}

// gSOAP closed a connection after most faults; each request is now read
// whole before gSOAP sees it, so none can be left half-read and the
// connection goes on.
TEST_F(SoapServerTest, AFaultLeavesTheConnectionOpenForTheNextRequest) {
  RawConnection connection(port());
  for (const std::string& request :
       {Post(Envelope("<pc:GetUser><pc:id>abc</pc:id></pc:GetUser>"), kAdminToken, "GetUser"),
        Post("{\"a\":1}", kAdminToken, "GetUser"),
        Post(Envelope("<pc:GetUser><pc:id>999999999</pc:id></pc:GetUser>"), kAdminToken,
             "GetUser")}) {
    ASSERT_TRUE(connection.Send(request));
    std::optional<HttpResponse> fault = connection.Read();
    ASSERT_TRUE(fault.has_value());
    EXPECT_EQ(fault->status, 500) << fault->body;
    ASSERT_TRUE(connection.Send(PingRequest()));
    std::optional<HttpResponse> pong = connection.Read();
    ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(pong->status, 200) << pong->body;
  }
}

// Regression: a worker served one connection from its first byte to its
// close, so connections that sent half a request (or nothing after a first
// request) held every worker until the timeout, and nobody else was served.
// Here two workers face 40 connections that sent part of their headers, 10
// that sent the headers and part of a body, and 20 idle after a ping; with
// the timeout at 30 s, the WSDL and a Ping must still come (within the 10 s
// receive timeout of the reading socket) while all those stay open.
TEST(SoapSlowClientsTest, HalfSentAndIdleConnectionsHoldNoWorker) {
  ServerProcess server(
      {.protocols = {"soap"}, .extra_args = {"--soap-workers", "2", "--soap-timeout-ms", "30000"}});
  const int port = server.port("soap");
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 40; ++i) {
    held.push_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(held.back()->Send("POST /soap HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  }
  const std::string body = Envelope("<pc:Ping/>");
  for (int i = 0; i < 10; ++i) {
    held.push_back(std::make_unique<RawConnection>(port));
    std::string request = PingRequest();
    request.resize(request.size() - body.size() / 2);  // a body cut off mid-XML
    ASSERT_TRUE(held.back()->Send(request));
  }
  for (int i = 0; i < 20; ++i) {
    held.push_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(held.back()->Send(PingRequest()));
    ASSERT_TRUE(held.back()->Read().has_value()) << "idle connection " << i;
  }
  RawConnection wsdl(port);
  ASSERT_TRUE(wsdl.Send("GET /soap?wsdl HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  std::optional<HttpResponse> served = wsdl.Read();
  ASSERT_TRUE(served.has_value());
  EXPECT_EQ(served->status, 200);
  std::unique_ptr<ProtocolClient> client = MakeProtocolClient("soap", port);
  EXPECT_TRUE(client->Ping().ok());
  for (std::size_t i = 0; i < held.size(); ++i) {
    EXPECT_TRUE(held[i]->OpenAndSilent()) << "held connection " << i;
  }
}

TEST(SoapServerShutdownTest, SigtermExitsCleanlyWithAnIdleKeepAliveConnectionOpen) {
  ServerProcess server({.protocols = {"soap"}});
  RawConnection connection(server.port("soap"));
  ASSERT_TRUE(connection.Send(PingRequest()));
  ASSERT_TRUE(connection.Read().has_value());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server.Terminate(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

// Pings on one connection until the server closes it (at most `most`): how
// many were answered, and the headers of the last answer.
int PingsAnsweredOnOneConnection(int port, int most, std::string& last_headers) {
  RawConnection connection(port);
  int answered = 0;
  while (answered < most && connection.Send(PingRequest())) {
    std::optional<HttpResponse> response = connection.Read();
    if (!response.has_value()) break;
    EXPECT_EQ(response->status, 200);
    last_headers = response->headers;
    ++answered;
  }
  return answered;
}

TEST(SoapKeepAliveLimitTest, ClosesAConnectionAfterItsRequestLimit) {
  for (const int limit : {1, 3}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    ServerProcess server({.protocols = {"soap"},
                          .extra_args = {"--soap-max-keep-alive-requests", std::to_string(limit)}});
    std::string last_headers;
    EXPECT_EQ(PingsAnsweredOnOneConnection(server.port("soap"), 10, last_headers), limit);
    for (char& c : last_headers) c = static_cast<char>(std::tolower(c));
    EXPECT_NE(last_headers.find("connection: close"), std::string::npos) << last_headers;
    // The next connection gets as many.
    EXPECT_EQ(PingsAnsweredOnOneConnection(server.port("soap"), 10, last_headers), limit);
  }
}

TEST(SoapKeepAliveLimitTest, ZeroKeepsAConnectionOpenPastGsoapsDefaultOf100) {
  ServerProcess server(
      {.protocols = {"soap"}, .extra_args = {"--soap-max-keep-alive-requests", "0"}});
  std::string last_headers;
  EXPECT_EQ(PingsAnsweredOnOneConnection(server.port("soap"), 150, last_headers), 150);
}

}  // namespace
}  // namespace polycrud::testing
