#include "adapters/soap/soap_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/write.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include "adapters/soap/soap_user_service.h"
#include "soapH.h"

namespace polycrud::soap_adapter {
namespace {

namespace http = http_transport::http;
using http_transport::HttpRequest;
using http_transport::HttpResponse;

// Headers are bounded apart from the body, as on the REST face.
constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;

// HTTP GET handler: the WSDL at /soap?wsdl, 404 for anything else.
int ServeGet(struct soap* soap) {
  const std::string_view path = soap->path;
  if (path != "/soap?wsdl" && path != "/soap?WSDL") return 404;
  const std::string_view wsdl = WsdlText();
  soap->http_content = "text/xml; charset=utf-8";
  soap->length = wsdl.size();
  if (soap_response(soap, SOAP_FILE) != SOAP_OK ||
      soap_send_raw(soap, wsdl.data(), wsdl.size()) != SOAP_OK || soap_end_send(soap) != SOAP_OK) {
    return soap_closesock(soap);
  }
  return SOAP_OK;
}

// The HTTP answer gSOAP wrote, or nothing if it is not one.
std::optional<HttpResponse> ParseAnswer(std::string_view text) {
  if (text.empty()) {
    spdlog::error("soap: gSOAP wrote no answer");
    return std::nullopt;
  }
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(boost::none);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (!parser.is_done() && used < text.size()) {
    const std::size_t n =
        parser.put(boost::asio::buffer(text.data() + used, text.size() - used), ec);
    used += n;
    if (ec == http::error::need_more) ec = {};
    if (ec || n == 0) break;
  }
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) {
    spdlog::error("soap: gSOAP wrote no HTTP answer ({})", ec.message());
    return std::nullopt;
  }
  return parser.release();
}

http_transport::HttpServerOptions HttpOptions(const SoapServerOptions& options) {
  return {.name = "soap",
          .bind_address = options.bind_address,
          .port = options.port,
          .threads = options.workers,
          .max_body_bytes = options.max_request_bytes,
          .max_header_bytes = kMaxHeaderBytes,
          .idle_timeout_ms = options.timeout_ms,
          .io_timeout_ms = options.timeout_ms,
          .max_keep_alive_requests = options.max_keep_alive_requests,
          .connections = options.connections,
          .tls = options.tls};
}

}  // namespace

struct SoapHandler::Context {
  Context(UserService& core, Metrics& metrics) : soap(soap_new1(SOAP_C_UTFSTRING)) {
    if (soap == nullptr) throw std::bad_alloc();
    soap_set_namespaces(soap, namespaces);
    soap->fget = &ServeGet;
    service = std::make_unique<SoapUserService>(soap, core, metrics);
  }
  ~Context() {
    service.reset();
    soap_destroy(soap);
    soap_end(soap);
    soap_free(soap);
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  struct soap* soap;
  std::unique_ptr<SoapUserService> service;
};

SoapHandler::SoapHandler(UserService& service, Metrics& metrics)
    : service_(service), metrics_(metrics) {}

SoapHandler::~SoapHandler() = default;

SoapServer::SoapServer(UserService& service, Metrics& metrics, SoapServerOptions options)
    : handler_(service, metrics),
      http_({.handle = [this](HttpRequest& request) { return handler_.Handle(request); },
             .read_error =
                 [this](http::status status, std::string_view message) {
                   return handler_.Fault(Status::InvalidArgument(std::string(message), ""), status);
                 },
             .internal_error =
                 [this] {
                   return handler_.Fault(Status::Internal("the SOAP handler failed"),
                                         http::status::internal_server_error);
                 }},
            HttpOptions(options)) {}

SoapServer::~SoapServer() { Stop(); }

void SoapServer::Start() { http_.Start(); }
void SoapServer::Stop() { http_.Stop(); }

std::unique_ptr<SoapHandler::Context> SoapHandler::TakeContext() {
  {
    std::lock_guard lock(mu_);
    if (!free_.empty()) {
      std::unique_ptr<Context> context = std::move(free_.back());
      free_.pop_back();
      return context;
    }
  }
  return std::make_unique<Context>(service_, metrics_);
}

void SoapHandler::ReturnContext(std::unique_ptr<Context> context) {
  struct soap* soap = context->soap;
  soap_destroy(soap);
  soap_end(soap);
  soap->is = nullptr;
  soap->os = nullptr;
  std::lock_guard lock(mu_);
  free_.push_back(std::move(context));
}

HttpResponse SoapHandler::Handle(HttpRequest& request) {
  // gSOAP reads the request as it came, less what the HTTP server already
  // did: the body is whole (no chunks to undo) and "100 Continue" was sent.
  request.erase(http::field::expect);
  request.prepare_payload();
  std::ostringstream raw;
  raw << request;
  std::istringstream in(std::move(raw).str());
  std::ostringstream out;
  std::unique_ptr<Context> context = TakeContext();
  context->soap->is = &in;
  context->soap->os = &out;
  context->service->ServeRequest();
  ReturnContext(std::move(context));
  std::optional<HttpResponse> answer = ParseAnswer(out.view());
  if (!answer) {
    return Fault(Status::Internal("gSOAP wrote no HTTP answer"),
                 http::status::internal_server_error);
  }
  // Whether the connection stays open is the HTTP server's choice (see
  // the header), not gSOAP's, which closes after most faults. Said
  // explicitly: a gSOAP client closes its connection after an answer without
  // "Connection: keep-alive", even in HTTP/1.1.
  answer->set(http::field::connection, "keep-alive");
  return std::move(*answer);
}

HttpResponse SoapHandler::Fault(const Status& status, http::status code) {
  std::ostringstream out;
  std::unique_ptr<Context> context = TakeContext();
  struct soap* soap = context->soap;
  soap->os = &out;
  soap_begin(soap);
  soap->version = 1;
  SetFault(soap, status);
  soap_send_fault(soap);
  ReturnContext(std::move(context));
  std::optional<HttpResponse> answer = ParseAnswer(out.view());
  if (!answer) {
    answer.emplace(http::status::internal_server_error, 11);
    answer->set(http::field::content_type, "text/plain; charset=utf-8");
    answer->body() = "internal error";
  }
  answer->result(code);
  answer->reason({});  // the status's own reason phrase
  answer->set(http::field::connection, "keep-alive");
  answer->prepare_payload();
  return std::move(*answer);
}

}  // namespace polycrud::soap_adapter
