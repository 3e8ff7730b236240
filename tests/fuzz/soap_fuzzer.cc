// Fuzz target: bytes as the body of a SOAP request (POST /soap with the
// admin's token, as the HTTP server hands it over), run through gSOAP in
// memory by the real SoapHandler over the real core: envelopes, namespaces,
// entities, numbers, nesting. Every answer must be well-formed HTTP whose
// status is 200 or a fault's 4xx/500 with the core code in its detail.
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "adapters/soap/soap_server.h"
#include "tests/fuzz/fuzz_service.h"

namespace http = boost::beast::http;

namespace {

struct State {
  polycrud::fuzz::FuzzService core;
  polycrud::soap_adapter::SoapHandler handler{core.service, core.metrics};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  polycrud::soap_adapter::SoapHandler& handler = polycrud::fuzz::Fresh<State>().handler;
  polycrud::http_transport::HttpRequest request(http::verb::post, "/soap", 11);
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::content_type, "text/xml; charset=utf-8");
  request.set(http::field::authorization, "Bearer " + std::string(polycrud::fuzz::kAdminToken));
  request.body().assign(reinterpret_cast<const char*>(data), size);
  request.prepare_payload();
  const polycrud::http_transport::HttpResponse answer = handler.Handle(request);
  const unsigned status = answer.result_int();
  if (status != 200) {
    // A fault: the core code travels in the detail (API.md, Error model).
    if (answer.body().find("<code xmlns=\"urn:polycrud:v1\">") == std::string::npos) {
      __builtin_trap();
    }
  }
  return 0;
}
